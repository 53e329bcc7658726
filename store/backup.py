"""Online backup and restore of the embedded SQLite databases: the store and Rasa's tracker store.

    python -m store.backup create BACKUP_DIR     # while the stack runs
    python -m store.backup restore BACKUP_DIR    # stop the stack first (scripts/run.sh)
    python -m store.backup check BACKUP_DIR      # integrity of a backup

`create` uses SQLite's online backup API (sqlite3.Connection.backup): it copies the database
page by page under short read locks and restarts when a writer changed a page already copied,
so the copy is one consistent snapshot even while the gateway, the action server and Rasa keep
writing (copying the file would not be: the WAL holds the newest pages). Each copy is checked
with `PRAGMA integrity_check`, and BACKUP_DIR/manifest.json records what was copied.
`restore` checks the backup, then writes it into the live database with the same API (under
SQLite's write lock, so no process sees half a restore).

PostgreSQL is backed up with pg_dump / pg_restore (docs/deployment.md).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sqlite3
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from store.db import data_dir, default_database_url

STORE_FILE = "assistant.db"
TRACKER_FILE = "rasa_tracker.db"
# All pages in one step: the step is one read transaction, a snapshot; in WAL mode writers go
# on meanwhile. (Several small steps would restart whenever another connection writes between
# them, which a busy stack does all the time.)
PAGES_PER_STEP = -1


class BackupError(Exception):
    pass


@dataclass
class Copied:
    name: str  # file name inside the backup folder
    source: str
    bytes: int
    tables: dict[str, int]


def sqlite_path(url: str) -> Path | None:
    """The file of a sqlite:/// URL; None for any other database."""
    if not url.startswith("sqlite"):
        return None
    path = url.split(":///", 1)[1] if ":///" in url else ""
    if not path or path.startswith(":memory:"):
        raise BackupError(f"not a database file: {url}")
    return Path(path.split("?", 1)[0])


def databases() -> dict[str, Path]:
    """The embedded databases of this installation (settings as in the README)."""
    found: dict[str, Path] = {}
    store = sqlite_path(default_database_url())
    if store is not None:
        found[STORE_FILE] = store
    tracker_url = os.environ.get("TRACKER_STORE_URL", "").strip()
    if not tracker_url:
        found[TRACKER_FILE] = data_dir() / TRACKER_FILE
    elif (tracker := sqlite_path(tracker_url)) is not None:
        found[TRACKER_FILE] = tracker
    return found


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def integrity(path: Path) -> dict[str, int]:
    """Row counts per table; raises BackupError unless `PRAGMA integrity_check` says ok."""
    conn = _connect(path)
    try:
        result = [row[0] for row in conn.execute("PRAGMA integrity_check")]
        if result != ["ok"]:
            raise BackupError(f"{path}: integrity check failed: {'; '.join(result[:5])}")
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        return {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}
    finally:
        conn.close()


def copy_database(source: Path, target: Path) -> None:
    """One consistent copy of `source` into `target` with SQLite's online backup API."""
    src = _connect(source)  # read-write open: a read-only one cannot open a WAL database without its -shm
    dst = sqlite3.connect(target, isolation_level=None)
    try:
        src.backup(dst, pages=PAGES_PER_STEP)
    finally:
        dst.close()
        src.close()


def create(backup_dir: Path, sources: dict[str, Path] | None = None) -> list[Copied]:
    sources = databases() if sources is None else sources
    if not sources:
        raise BackupError("no SQLite database to back up (the store and tracker store are on a server: "
                          "use pg_dump, see docs/deployment.md)")
    backup_dir.mkdir(parents=True, exist_ok=True)
    if any((backup_dir / name).exists() for name in sources):
        raise BackupError(f"{backup_dir} already holds a backup: choose an empty folder")
    copied = []
    for name, source in sources.items():
        if not source.exists():
            raise BackupError(f"{source} does not exist")
        target = backup_dir / name
        partial = target.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        copy_database(source, partial)
        tables = integrity(partial)
        partial.rename(target)  # only a checked copy gets the real name
        copied.append(Copied(name, str(source), target.stat().st_size, tables))
    manifest = {"created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "databases": [asdict(c) for c in copied]}
    (backup_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return copied


def check(backup_dir: Path) -> list[Copied]:
    manifest_file = backup_dir / "manifest.json"
    if not manifest_file.exists():
        raise BackupError(f"{backup_dir} has no manifest.json: not a backup made by this command")
    manifest = json.loads(manifest_file.read_text())
    checked = []
    for entry in manifest["databases"]:
        path = backup_dir / entry["name"]
        if not path.exists():
            raise BackupError(f"{path} is missing")
        tables = integrity(path)
        if tables != entry["tables"]:
            raise BackupError(f"{path}: row counts differ from the manifest")
        checked.append(Copied(entry["name"], entry["source"], path.stat().st_size, tables))
    return checked


def restore(backup_dir: Path, targets: dict[str, Path] | None = None) -> list[Copied]:
    """Write a checked backup into the live databases (the stack should be stopped)."""
    checked = check(backup_dir)
    targets = databases() if targets is None else targets
    restored = []
    for entry in checked:
        if entry.name not in targets:
            raise BackupError(f"{entry.name}: this installation has no SQLite database for it "
                              "(DATABASE_URL / TRACKER_STORE_URL point at a server)")
    for entry in checked:
        target = targets[entry.name]
        target.parent.mkdir(parents=True, exist_ok=True)
        src = _connect(backup_dir / entry.name)
        dst = _connect(target)
        try:
            src.backup(dst)  # replaces every page under the target's write lock
        finally:
            dst.close()
            src.close()
        tables = integrity(target)
        if tables != entry.tables:
            raise BackupError(f"{target}: row counts after the restore differ from the backup")
        restored.append(Copied(entry.name, str(target), target.stat().st_size, tables))
    return restored


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m store.backup", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["create", "restore", "check"])
    parser.add_argument("folder", type=Path, help="backup folder (empty for create)")
    args = parser.parse_args(argv)
    try:
        done = {"create": create, "restore": restore, "check": check}[args.command](args.folder)
    except (BackupError, sqlite3.Error) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for entry in done:
        rows = sum(entry.tables.values())
        print(f"{args.command}: {entry.name} ({entry.source}) {entry.bytes} bytes, "
              f"{len(entry.tables)} tables, {rows} rows, integrity ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
