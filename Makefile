# The README's two commands: `make serve` and `make test`. Both set themselves up.
SHELL := /bin/bash
VENV := .venv
STAMP := $(VENV)/.setup-stamp

.PHONY: setup serve test test-fast lint typecheck pytest bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml requirements.lock package.json package-lock.json scripts/setup.sh
	bash scripts/setup.sh
	@touch $(STAMP)

serve: setup
	$(VENV)/bin/videoforge serve

test: setup
	bash scripts/test.sh

# The unit tier: no server, database, ffmpeg or child process (seconds, not minutes).
test-fast: setup
	$(VENV)/bin/pytest -q -n 2 -m unit

lint: setup
	$(VENV)/bin/ruff check src tests bench deploy
	$(VENV)/bin/ruff format --check src tests bench deploy
	$(VENV)/bin/lint-imports

typecheck: setup
	$(VENV)/bin/mypy

pytest: setup
	$(VENV)/bin/pytest

bench: setup
	$(VENV)/bin/python bench/ladder.py

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache
