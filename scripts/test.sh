#!/usr/bin/env bash
# lint, type check, every test. Uses PostgreSQL/Redis on loopback, or private ones.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
echo "== ruff"
ruff check src tests bench deploy
ruff format --check src tests bench deploy
echo "== mypy"
mypy
echo "== pytest"
pytest "$@"
