#!/usr/bin/env bash
# Installs Debian's Chromium for the console's Playwright browser tests. Idempotent: does
# nothing when chromium is already on PATH. Playwright's own browser download is not used
# (it does not work on these machines); the tests launch /usr/bin/chromium directly.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
else
  SUDO=""
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends chromium chromium-driver fonts-noto-cjk
command -v chromium >/dev/null 2>&1 || { echo "error: chromium did not install" >&2; exit 1; }
