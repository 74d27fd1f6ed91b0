"""``videoforge transcode INPUT OUTDIR``: the media pipeline on a local file, no queue,
database or object store (for trying the ladder, and for operators)."""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
from pathlib import Path

from videoforge.processor.config import ProcessingConfig
from videoforge.processor.pipeline import MediaRejected, process_file
from videoforge.settings import Settings


def transcode_file(settings: Settings, input_path: Path, outdir: Path) -> int:
    """``videoforge transcode INPUT OUTDIR``: run the pipeline on a local file.

    Prints each output (key, size) and returns 0; on a refused input prints the reason to
    stderr and returns 3 (2 when the input does not exist).
    """
    input_path = Path(input_path)
    outdir = Path(outdir)
    if not input_path.is_file():
        print(f"error: {input_path} is not a file", file=sys.stderr)
        return 2
    config = ProcessingConfig.from_settings(settings)
    outdir.mkdir(parents=True, exist_ok=True)

    async def report(percent: int) -> None:
        print(f"\rprogress: {percent:3d}%", end="", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix=".vf-transcode-", dir=outdir) as tmp:
        try:
            result = asyncio.run(process_file(input_path, Path(tmp), config, on_progress=report))
        except MediaRejected as exc:
            print(f"\nerror: refused ({exc.code}): {exc.message}", file=sys.stderr)
            return 3
        except KeyboardInterrupt:
            print("\ncancelled", file=sys.stderr)
            return 130
        print(file=sys.stderr)
        for output in result.outputs:
            target = outdir / output.rel_key
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(output.path, target)
            print(f"{output.rel_key}\t{output.size}")
    probe = result.probe
    print(
        f"source: {probe.width}x{probe.height} {probe.fps:g} fps {probe.duration:.2f} s "
        f"{probe.video_codec}/{probe.audio_codec or '-'}; "
        f"renditions: {', '.join(f'{r.quality} {r.width}x{r.height}' for r in result.renditions)}"
    )
    return 0
