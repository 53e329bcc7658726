"""The store's modules depend on each other one way: no import circle, each imports alone."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

STORE = Path(__file__).resolve().parent.parent / "store"


def _modules() -> list[str]:
    return sorted(f"store.{p.stem}" for p in STORE.glob("*.py") if p.stem != "__init__")


def _store_imports(module: str) -> set[str]:
    """Every store module `module` imports, wherever the import stands (top level, inside a
    function, under `if TYPE_CHECKING:`): a lazy import is still a dependency."""
    tree = ast.parse((STORE / f"{module.split('.')[1]}.py").read_text(encoding="utf-8"))
    known, found = set(_modules()), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            if node.module == "store":  # from store import booking
                found.update(f"store.{alias.name}" for alias in node.names)
    return {name for name in found if name in known and name != module}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a path (first module repeated at the end), or None."""
    state: dict[str, str] = {}  # visiting | done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "visiting"
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "visiting":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_cycle_finder_finds_a_circle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_no_import_circle_in_the_store():
    graph = {module: _store_imports(module) for module in _modules()}
    assert "store.booking_kinds" in graph["store.booking"]  # the parser sees imports
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_each_store_module_imports_alone():
    # In a fresh interpreter, forget every store module before importing the next one, so each
    # is imported first, with nothing of the store loaded before it.
    script = (
        "import importlib, sys\n"
        f"for name in {_modules()!r}:\n"
        "    for loaded in [m for m in sys.modules if m == 'store' or m.startswith('store.')]:\n"
        "        del sys.modules[loaded]\n"
        "    importlib.import_module(name)\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=STORE.parent,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
