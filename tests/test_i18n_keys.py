"""Every message key the code uses exists in English and Chinese with the same placeholders.

The code is read, not run: `ast` finds the keys in calls of `t(...)` / `i18n.t(...)`, in names
and parameters that hold a key (`*_key`, `key`), in the reasons of booking refusals (`reason=`)
and in notification payloads (`"text_key"`). Keys built at run time (f-strings such as
`f"elig_outcome_{outcome}"`) must be one of the families below, each with the values it takes.
"""
from __future__ import annotations

import ast
import re
import string
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import i18n
from actions.eligibility_answers import FORM_SLOTS
from actions.eligibility_rules import OUTCOMES
from store.kinds import EligibilityOutcome, OfferKind
from store.schedule import MODULES

ROOT = Path(__file__).resolve().parent.parent
CODE = ("actions", "bot", "console", "store", "stack")
# Names that end in "key" but hold no message key.
NOT_MESSAGE_KEYS = {"dedupe_key", "idempotency_key", "secret_key", "sort_key", "cache_key"}
# Calls whose `reason` is a message key (store/booking_results.py, store/booking_kinds.Refused).
REASON_IS_KEY = {"Refused", "BookingResult", "CancelResult", "WaitlistResult"}
KEY_RE = re.compile(r"[a-z][a-z0-9_]*")
# Formats, not sentences: the caller passes every field and each language uses its own
# (store/schedule.py format_date: "12 January 2027" and "2027年1月12日").
FIELDS_PER_LANGUAGE = {"booking_date_format": {"day", "month", "month_number", "year", "weekday"}}


def _eligibility_slots() -> list[str]:
    return [*FORM_SLOTS, "enquiry_factory_name", "enquiry_contact"]


def _reason_codes() -> set[str]:
    """The reason codes of the eligibility rules: actions/eligibility_rules.py writes them as
    `Reason("<code>", ...)`, and one as f"size_just_{side}" with side below or above."""
    codes = {"size_just_below", "size_just_above"}
    for node in ast.walk(_parse(ROOT / "actions" / "eligibility_rules.py")):
        if isinstance(node, ast.Call) and _name(node.func) == "Reason" and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                codes.add(first.value)
    return codes


# Keys built at run time: the f-string's shape -> the values its placeholder takes.
FAMILIES: dict[str, object] = {
    "elig_outcome_{}": lambda: [o.value for o in EligibilityOutcome],
    "booking_kind_{}": lambda: [k.value for k in OfferKind],
    "booking_module_{}": lambda: [str(m) for m in MODULES],
    "elig_sector_{}": lambda: ["manufacturing", "services"],  # "other" is said as the user's words
    "elig_reason_{}": _reason_codes,
    "elig_{}_{}": lambda: [(verb, slot) for verb in ("ask", "reask") for slot in _eligibility_slots()],
}


@dataclass(frozen=True)
class Use:
    key: str  # a key, or a family's shape ("elig_outcome_{}")
    where: str
    values: frozenset[str] | None = None  # the placeholders given (None: unknown, e.g. **values)


def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _name(func: ast.expr) -> str:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def _strings(node: ast.expr) -> Iterator[str | ast.JoinedStr]:
    """The key-like strings an expression may evaluate to: constants, both sides of `or` and of
    a conditional, the values (not the keys) of a dict literal that is subscripted."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node.value
    elif isinstance(node, ast.JoinedStr):
        yield node
    elif isinstance(node, ast.BoolOp):
        for value in node.values:
            yield from _strings(value)
    elif isinstance(node, ast.IfExp):
        yield from _strings(node.body)
        yield from _strings(node.orelse)
    elif isinstance(node, ast.Subscript) and isinstance(node.value, ast.Dict):
        for value in node.value.values:
            yield from _strings(value)


def _shape(node: ast.JoinedStr) -> str:
    return "".join(
        str(part.value) if isinstance(part, ast.Constant) else "{}" for part in node.values
    )


def _is_key_name(name: str, bare: bool = False) -> bool:
    """`*_key` names a message key (but see NOT_MESSAGE_KEYS); a bare `key` does so only as a
    local variable (`key = "..."`): as a parameter it is also an idempotency key."""
    return (name.endswith("_key") and name not in NOT_MESSAGE_KEYS) or (bare and name == "key")


def _key_parameters(tree: ast.Module) -> dict[str, list[tuple[int, str]]]:
    """Functions of this module with parameters that hold a key: name -> [(position, name)]."""
    found: dict[str, list[tuple[int, str]]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            positional = [*node.args.posonlyargs, *node.args.args]
            params = [a.arg for a in positional]
            if params[:1] in (["self"], ["cls"]):
                params = params[1:]  # called as a method: the arguments start after it
            keyed = [(i, p) for i, p in enumerate(params) if _is_key_name(p)]
            keyed += [(-1, a.arg) for a in node.args.kwonlyargs if _is_key_name(a.arg)]
            if keyed:
                found[node.name] = keyed
    return found


def _modules() -> dict[Path, ast.Module]:
    return {path: _parse(path) for folder in CODE for path in sorted((ROOT / folder).rglob("*.py"))
            if "migrations" not in path.parts}


def uses() -> list[Use]:
    found: list[Use] = []
    modules = _modules()
    keyed: dict[str, list[tuple[int, str]]] = {}
    for tree in modules.values():
        keyed.update(_key_parameters(tree))
    for path, tree in modules.items():
        if True:

            def add(expr: ast.expr, line: int, values: frozenset[str] | None = None,
                    path: Path = path) -> None:
                where = f"{path.relative_to(ROOT)}:{line}"
                for s in _strings(expr):
                    if isinstance(s, ast.JoinedStr):
                        found.append(Use(_shape(s), where, values))
                    elif KEY_RE.fullmatch(s):
                        found.append(Use(s, where, values))

            for node in ast.walk(tree):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    # defaults of key parameters: error_key="store_error"
                    positional = [*node.args.posonlyargs, *node.args.args]
                    defaults = [*zip(positional[len(positional) - len(node.args.defaults):],
                                     node.args.defaults, strict=True),
                                *zip(node.args.kwonlyargs, node.args.kw_defaults, strict=True)]
                    for arg, default in defaults:
                        if default is not None and _is_key_name(arg.arg):
                            add(default, node.lineno)
                if isinstance(node, ast.Call):
                    name = _name(node.func)
                    if name == "t" and node.args:
                        given = None
                        if all(k.arg is not None for k in node.keywords):
                            given = frozenset(str(k.arg) for k in node.keywords)
                        add(node.args[0], node.lineno, given)
                    for keyword in node.keywords:
                        if keyword.arg and (_is_key_name(keyword.arg)
                                            or (keyword.arg == "reason" and name in REASON_IS_KEY)):
                            add(keyword.value, node.lineno)
                    if name == "Refused" and node.args:
                        add(node.args[0], node.lineno)
                    for position, _param in keyed.get(name, []):
                        if 0 <= position < len(node.args):
                            add(node.args[position], node.lineno)
                elif isinstance(node, ast.Assign | ast.AnnAssign):
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    if node.value is not None and any(_is_key_name(_target_name(x), bare=True) for x in targets):
                        add(node.value, node.lineno)
                elif isinstance(node, ast.Dict):
                    for k, v in zip(node.keys, node.values, strict=True):
                        if isinstance(k, ast.Constant) and k.value == "text_key" and v is not None:
                            add(v, node.lineno)
    return found


def _target_name(target: ast.expr) -> str:
    if isinstance(target, ast.Name):
        return target.id
    if isinstance(target, ast.Attribute):
        return target.attr
    return ""


def _placeholders(text: str) -> set[str]:
    return {field.split(".")[0].split("[")[0]
            for _, field, _, _ in string.Formatter().parse(text) if field}


def _expand(shape: str) -> list[str]:
    values = FAMILIES[shape]()  # type: ignore[operator]
    return [shape.format(*(v if isinstance(v, tuple) else (v,))) for v in values]


def test_the_reader_finds_the_keys_of_every_kind_of_use() -> None:
    """A guard on the test itself: each way of using a key is found at least once."""
    found = {u.key for u in uses()}
    for key in ("store_error",            # t("store_error", ...)  (a parameter's default)
                "booking_error",          # error_key="booking_error", `result.reason or "..."`
                "booking_confirmed",      # key = {...: "booking_confirmed"}[outcome]
                "booking_ask_factory",    # ask_key = "..." (class attribute)
                "booking_refused_started",  # CancelResult(..., reason="...")
                "booking_reminder",       # notification_payload("booking_reminder", ...)
                "staff_claim_button",     # i18n.t(...) in bot/
                "elig_outcome_{}"):       # a family
        assert key in found, key


def test_every_key_used_in_code_exists() -> None:
    catalogue = set(i18n.keys())
    missing = []
    for use in uses():
        if "{}" in use.key:
            assert use.key in FAMILIES, f"{use.where}: a key built at run time ({use.key}): add it to FAMILIES"
            missing += [f"{use.where}: {key}" for key in _expand(use.key) if key not in catalogue]
        elif use.key not in catalogue:
            missing.append(f"{use.where}: {use.key}")
    assert not missing, "keys used in code but not in i18n/messages:\n" + "\n".join(sorted(set(missing)))


def test_every_call_gives_the_placeholders_of_its_text() -> None:
    raw = i18n._catalogue()
    wrong = []
    for use in uses():
        if use.values is None or "{}" in use.key or use.key not in raw:
            continue
        needed = _placeholders(raw[use.key]["en"])
        if not needed <= use.values:
            wrong.append(f"{use.where}: {use.key} needs {sorted(needed - use.values)}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("key", i18n.keys())
def test_both_languages_have_the_same_placeholders(key: str) -> None:
    texts = i18n._catalogue()[key]
    if key in FIELDS_PER_LANGUAGE:  # each language picks its fields from the same values
        assert _placeholders(texts["en"]) | _placeholders(texts["zh"]) <= FIELDS_PER_LANGUAGE[key], key
        return
    assert _placeholders(texts["en"]) == _placeholders(texts["zh"]), key


def test_the_families_cover_the_outcomes() -> None:
    assert [o.value for o in EligibilityOutcome] == list(OUTCOMES)
