"""``python -m videoforge`` is the ``videoforge`` command (used to spawn workers)."""

from videoforge.cli import main

main()
