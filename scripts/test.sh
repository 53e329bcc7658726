#!/usr/bin/env bash
# README command 2: set up if needed, then run every test:
#   ruff and mypy (configured in pyproject.toml) · rasa data validate · rasa test (test stories, --fail-on-prediction-errors) · pytest
#   (unit, SQLite and PostgreSQL, end-to-end with real Rasa and action servers, browser).
# Extra arguments go to pytest, e.g. scripts/test.sh -k booking
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
started=$SECONDS
"$ROOT/scripts/setup.sh"
"$ROOT/scripts/install-browser.sh"

export TF_CPP_MIN_LOG_LEVEL=2 SQLALCHEMY_SILENCE_UBER_WARNING=1 RASA_TELEMETRY_ENABLED=false
LOGS="$ROOT/var/test-logs"; mkdir -p "$LOGS"

step() { echo; echo "==> $*"; }
quiet() {  # quiet LOGNAME CMD...: run, keep the output in a log, show its tail on failure
  local log="$LOGS/$1.log"; shift
  if ! "$@" >"$log" 2>&1; then
    tail -n 60 "$log"; echo "error: '$*' failed (full log: $log)" >&2; return 1
  fi
}

step "ruff"
quiet ruff .venvs/app/bin/python -m ruff check --no-fix .
echo "ok"

step "mypy"
# The Python 3.11 code (the files of [tool.mypy]), then rasa_extensions/ as the Rasa
# environment's Python 3.10 sees it.
quiet mypy .venvs/app/bin/python -m mypy
quiet mypy-rasa .venvs/app/bin/python -m mypy --python-version 3.10 --python-executable .venvs/rasa/bin/python \
  rasa_extensions
echo "ok"

step "training the model if its data changed"
quiet train .venvs/app/bin/python -m stack.train
grep -E "^==>" "$LOGS/train.log" || true

step "rasa data validate"
quiet validate .venvs/rasa/bin/rasa data validate --config config.yml --domain domain.yml --data nlu stories
echo "ok"

step "rasa test: test stories with --fail-on-prediction-errors"
quiet rasa-test .venvs/rasa/bin/rasa test core --model models/score.tar.gz --stories tests/stories \
  --fail-on-prediction-errors --out var/test-results/core
grep -hE "Correct:|Finished evaluation" "$LOGS/rasa-test.log" | head -5 || true
echo "ok"

step "pytest"
.venvs/app/bin/python -m pytest -q -p no:cacheprovider "$@"

echo
echo "all tests passed in $(( SECONDS - started )) s"
