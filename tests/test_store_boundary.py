"""The store's boundary, read from the source (AST, not running code):

- bot/ calls store services and gets plain views: it never imports the ORM models;
- the console may read with its own queries, but it changes the store only through store
  services: no row built from a model, no session.add/delete/merge, no UPDATE/DELETE/INSERT,
  no attribute assigned on a loaded row;
- notification rows are built only by their one writer, store.notifications.add.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SESSION_WRITES = {"add", "add_all", "delete", "merge", "bulk_save_objects", "bulk_insert_mappings"}
SQL_WRITES = {"update", "delete", "insert"}
# Attributes the console may set: its own objects and page context, Starlette's app/request/
# response, a wrapper function.
CONSOLE_SETTABLE = {"self", "app", "request", "response", "endpoint", "ctx"}


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def where(path: Path, node: ast.AST) -> str:
    return f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name}:{node.lineno}"


def imports_of(tree: ast.Module) -> list[tuple[ast.AST, str, list[str]]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node, alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((node, node.module, [alias.name for alias in node.names]))
    return found


def model_names() -> set[str]:
    tree = parse(ROOT / "store" / "models.py")
    return {node.name for node in tree.body if isinstance(node, ast.ClassDef)}


def test_bot_never_imports_the_orm_models():
    offences = []
    for path in modules("bot"):
        for node, module, names in imports_of(parse(path)):
            if module == "store.models" or (module == "store" and "models" in names) \
                    or (module == "sqlalchemy" or module.startswith("sqlalchemy.orm")):
                offences.append(f"{where(path, node)} imports {module} {names}")
    assert offences == []


def _root_name(node: ast.AST) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def console_writes(path: Path, models: set[str] | None = None) -> list[str]:
    tree = parse(path)
    models = model_names() if models is None else models
    imported_models: set[str] = set()
    offences = []
    for node, module, names in imports_of(tree):
        if module == "store.models":
            imported_models |= set(names) & models
        if module == "sqlalchemy" and SQL_WRITES & set(names):
            offences.append(f"{where(path, node)} imports {sorted(SQL_WRITES & set(names))} from sqlalchemy")
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in imported_models:
                offences.append(f"{where(path, node)} builds a {func.id} row")
            if isinstance(func, ast.Attribute) and func.attr in SESSION_WRITES \
                    and _root_name(func.value) in {"s", "session", "db_session"}:
                offences.append(f"{where(path, node)} calls session.{func.attr}")
        targets: list[ast.AST] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        for target in targets:
            for part in ast.walk(target):
                if isinstance(part, ast.Attribute) and isinstance(part.ctx, ast.Store) \
                        and _root_name(part) not in CONSOLE_SETTABLE:
                    offences.append(f"{where(path, node)} sets {ast.unparse(part)}")
    return offences


def test_the_console_writes_only_through_store_services():
    offences = [offence for path in modules("console") for offence in console_writes(path)]
    assert offences == []


def test_the_console_check_finds_a_hand_written_row(tmp_path):
    """The check above can fail: a console module that writes by hand is caught."""
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from sqlalchemy import update\n"
        "from store.models import AuditEntry, Handoff\n"
        "def f(s, h):\n"
        "    s.add(AuditEntry(action='x'))\n"
        "    h.status = 'resolved'\n"
        "    s.execute(update(Handoff))\n",
        encoding="utf-8",
    )
    offences = console_writes(bad)
    assert len(offences) == 4, offences


def test_notification_rows_have_one_writer():
    offences = []
    for package in ("store", "bot", "console", "actions", "stack"):
        for path in modules(package):
            if path == ROOT / "store" / "notifications.py":
                continue
            for node in ast.walk(parse(path)):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Notification":
                    offences.append(where(path, node))
    assert offences == []
