#!/usr/bin/env bash
# One-shot set-up for a fresh Debian/Ubuntu machine with Python 3.11+:
# system packages (ffmpeg, chromium, nodejs/npm, postgresql and redis for tests when missing),
# the virtual environment at .venv from requirements.lock, the package (editable),
# and the web client's npm dependencies (hls.js).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
"$PYTHON" - <<'PY'
import sys
if sys.version_info < (3, 11):
    sys.exit(f"VideoForge needs Python 3.11+, this is {sys.version.split()[0]}")
PY

need=()
command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null 2>&1 || need+=(ffmpeg)
command -v npm >/dev/null 2>&1 || need+=(nodejs npm)
# setpriv --pdeathsig: a worker's ffmpeg dies with it (util-linux, Essential on Debian).
command -v setpriv >/dev/null 2>&1 || need+=(util-linux)
if [ "${VIDEOFORGE_SETUP_TEST_DEPS:-1}" = 1 ]; then
  [ -x /usr/bin/chromium ] || need+=(chromium)
  command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
  # bench/serving.py's HTTP load generator (C: it leaves the CPU to the gallery).
  command -v wrk >/dev/null 2>&1 || need+=(wrk)
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v pg_ctl >/dev/null 2>&1 || need+=(postgresql)
fi
"$PYTHON" -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing system packages: ${need[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -r requirements.lock
.venv/bin/python -m pip install -q --no-deps -e .

if [ -f package-lock.json ]; then
  npm ci --silent --no-audit --no-fund
fi
echo "setup: done (.venv/bin/videoforge)"
