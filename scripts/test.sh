#!/usr/bin/env bash
# lint, type check, every test. Uses PostgreSQL/Redis on loopback, or private ones.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
echo "== ruff"
ruff check src tests bench deploy
ruff format --check src tests bench deploy
echo "== import contracts"
lint-imports
echo "== mypy"
mypy
echo "== pytest"
# Many tests wait on long polls, visibility timeouts, ffmpeg and child servers rather
# than the CPU, so four workers pay off even on two cores. Each worker gets its own
# moto server and migrated template databases (fixtures are per process).
pytest -n "${PYTEST_WORKERS:-4}" -m "not browser" "$@"
# Playwright's sync API keeps an event loop running in its process for as long as the
# browser lives, which would break every asyncio test sharing that process: the
# browser tests get a pytest run of their own.
echo "== browser tests"
pytest -m browser "$@"
