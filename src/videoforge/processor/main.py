"""Entry points of the Video Processor used by the ``videoforge`` command."""

from __future__ import annotations

from pathlib import Path

from videoforge.settings import Settings


def run_worker(settings: Settings) -> None:
    """``videoforge worker``: consume the jobs queue until SIGTERM/SIGINT."""
    from videoforge.processor.worker import run

    run(settings)


def transcode_file(settings: Settings, input_path: Path, outdir: Path) -> int:
    """``videoforge transcode``: the pipeline on a local file; returns the exit code."""
    from videoforge.processor.pipeline import transcode_file_cli

    return transcode_file_cli(settings, input_path, outdir)
