"""The Rasa version the patches were written for: the `rasa` pin of requirements.txt (the one
file scripts/setup.sh and the Rasa image install)."""
from __future__ import annotations

import re
from functools import cache
from pathlib import Path

REQUIREMENTS = Path(__file__).resolve().parent / "requirements.txt"


@cache
def pinned_rasa_version() -> str:
    for line in REQUIREMENTS.read_text(encoding="utf-8").splitlines():
        match = re.fullmatch(r"rasa(\[[\w,]+\])?==([\w.]+)", line.split("#", 1)[0].strip())
        if match:
            return match.group(2)
    raise RuntimeError(f"no rasa==<version> line in {REQUIREMENTS}")


def installed_rasa_version() -> str:
    import rasa

    return rasa.__version__


def rasa_is_pinned() -> bool:
    return installed_rasa_version() == pinned_rasa_version()
