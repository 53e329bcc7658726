"""The SQLite store on a full disk and on a read-only disk, for real: the store lives on a small
tmpfs of its own, which the test fills up and then remounts read-only (tests run as root, and
root ignores file permissions, so chmod would not stop SQLite; the kernel's ENOSPC and EROFS do).

Each outage: every message gets the clear "can't save anything now" answer, the log gets one
line (no traceback per message, no error every notifier round), the gateway keeps running, and
the next message after the disk recovers is answered normally."""
from __future__ import annotations

import asyncio
import errno
import logging
import os
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import i18n
from store.db import Database
from tests.e2e.gateways import running_gateway
from tests.fakes.bot_api import free_port


@pytest.fixture
def small_disk(tmp_path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> Path:
    """Fill the disk to the last byte; the file to delete to free it."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as out:
        chunk = b"\0" * 65536
        while True:
            try:
                out.write(chunk)
            except OSError as error:
                assert error.errno == errno.ENOSPC
                if len(chunk) == 1:
                    break
                chunk = chunk[: len(chunk) // 16 or 1]
    return filler


def truncate_wal(path: Path) -> None:
    """Empty the WAL, so that the next write must grow a file on the disk."""
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
    conn.close()


def remount(disk: Path, mode: str, db: Database | None = None) -> None:
    """Linux refuses to make a filesystem read-only while a file on it is open for writing:
    the gateway's pooled connections are closed first (the notifier may open one meanwhile:
    try again)."""
    for _ in range(50):
        if db is not None:
            db.engine.dispose()
        done = subprocess.run(["mount", "-o", f"remount,{mode}", str(disk)], capture_output=True, text=True)
        if done.returncode == 0:
            return
        time.sleep(0.05)
    held = [os.readlink(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")
            if str(disk) in (os.readlink(f"/proc/self/fd/{fd}") if os.path.exists(f"/proc/self/fd/{fd}") else "")]
    maps = [line for line in open("/proc/self/maps") if str(disk) in line]
    raise AssertionError(f"remount,{mode} failed: {done.stderr} held={held} maps={maps[:3]}")


def problems(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR]


async def outage(gateway, caplog, users: list[int]) -> None:
    """Messages during an outage: each user told, one log line in all."""
    api = gateway.api
    caplog.clear()
    for user in users:
        api.push_text(user, "what is SCORE")
    for user in users:
        texts = await api.wait_sent(user, 1, 30)
        assert texts == [i18n.t("store_unavailable", "en")], texts
    await asyncio.sleep(2.0)  # several notifier rounds (every 0.5 s) hit the store meanwhile
    lines = problems(caplog)
    assert len(lines) == 1, [(r.name, r.getMessage()[:120], bool(r.exc_info)) for r in lines]
    assert "store unavailable" in lines[0].getMessage() and not lines[0].exc_info


async def answered_normally(gateway, user: int) -> None:
    gateway.api.push_text(user, "what is SCORE")
    texts = await gateway.api.wait_sent(user, 1, 30)
    assert texts[0] not in (i18n.t("store_unavailable", "en"), i18n.t("unavailable", "en")), texts


async def test_full_then_read_only_disk(stack, small_disk: Path, caplog) -> None:
    caplog.set_level(logging.INFO)
    path = small_disk / "assistant.db"
    db = Database(f"sqlite:///{path}")
    db.create_all()
    try:
        async with running_gateway(stack, db) as gateway:
            await answered_normally(gateway, gateway.new_user())

            # Full disk: every byte taken, the WAL emptied so a write must allocate.
            truncate_wal(path)
            filler = fill(small_disk)
            await outage(gateway, caplog, [gateway.new_user(), gateway.new_user()])
            filler.unlink()
            await answered_normally(gateway, gateway.new_user())

            # Read-only disk.
            remount(small_disk, "ro", db)
            try:
                with pytest.raises(OSError):
                    (small_disk / "probe").write_bytes(b"x")  # really read-only, even for root
                await outage(gateway, caplog, [gateway.new_user(), gateway.new_user()])
            finally:
                remount(small_disk, "rw")
            await answered_normally(gateway, gateway.new_user())
            assert gateway.application.running  # no crash, no restart
    finally:
        db.dispose()
    assert os.path.exists(path)


async def store_health(url: str) -> tuple[int, dict]:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(f"{url}/health")
    return response.status_code, response.json()["parts"]["store"]


async def test_health_says_the_store_is_down_on_a_full_or_read_only_disk(stack, small_disk: Path) -> None:
    """SELECT 1 answers on such a disk while every turn fails: /health must not say up."""
    path = small_disk / "assistant.db"
    db = Database(f"sqlite:///{path}")
    db.create_all()
    port = free_port()
    try:
        async with running_gateway(stack, db, health_port=port) as gateway:
            url = f"http://127.0.0.1:{port}"
            assert await store_health(url) == (200, {"up": True})

            truncate_wal(path)
            filler = fill(small_disk)
            status, store = await store_health(url)
            assert status == 503 and store["up"] is False, store
            assert "full" in store["detail"], store  # "database or disk is full"
            filler.unlink()
            assert await store_health(url) == (200, {"up": True})

            remount(small_disk, "ro", db)
            try:
                status, store = await store_health(url)
                assert status == 503 and store["up"] is False, store
                assert "cannot write" in store["detail"] and "read-only" in store["detail"], store
            finally:
                remount(small_disk, "rw")
            assert await store_health(url) == (200, {"up": True})
            assert gateway.application.running
    finally:
        db.dispose()
