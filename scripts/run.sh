#!/usr/bin/env bash
# README command 1: set up if needed, then run the assistant (see `--headless`).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh"
cd "$ROOT"
exec .venvs/app/bin/python -m stack.run "$@"
