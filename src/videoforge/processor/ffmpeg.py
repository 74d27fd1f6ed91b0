"""The only way the processor runs ffmpeg and ffprobe.

:func:`build_argv` builds every command line. For each untrusted input it always adds the
guards from SECURITY.md ("Hostile media"): only the ``file`` protocol, only real video
containers as demuxers, a stream-count and pixel limit, a bounded probe, and the input
spelled ``file:<absolute path>`` so that a name can never select another protocol. It
refuses the flags that would undo those guards. :mod:`runner` runs what it builds.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Literal

from videoforge.processor.config import ProcessingConfig


class MediaRejected(Exception):
    """Permanent failure caused by the media itself; retrying cannot help.

    ``code`` is stable (``unsupported_format``, ``resolution_too_large``, ``timeout``...);
    ``message`` is a sentence a person can read.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class PipelineCancelled(Exception):
    """Processing stopped because its cancel event was set."""


class ToolError(Exception):
    """ffmpeg/ffprobe exited unsuccessfully; ``stderr_tail`` says why."""

    def __init__(self, argv: Sequence[str], returncode: int, stderr_tail: str) -> None:
        super().__init__(f"{Path(argv[0]).name} exited with {returncode}: {stderr_tail[-500:]}")
        self.returncode = returncode
        self.stderr_tail = stderr_tail


class Tool(StrEnum):
    FFMPEG = "ffmpeg"
    FFPROBE = "ffprobe"


# Options that may precede ``-i`` of an input. Anything else there (``-f concat``,
# ``-safe 0``, a protocol list) could change how the untrusted bytes are interpreted.
_INPUT_OPTIONS = frozenset({"-ss", "-t", "-to", "-itsoffset", "-skip_frame:v"})
_DECODER_NAME = re.compile(r"^[a-z0-9_]+$")
# Options that must never appear anywhere in a command that reads untrusted input.
_FORBIDDEN = frozenset(
    {
        "-safe",
        "-allowed_extensions",
        "-allowed_segment_extensions",
        "-enable_drefs",
        "-use_absolute_path",
        "-protocol_whitelist",
        "-protocol_blacklist",
        "-format_whitelist",
        "-codec_whitelist",
        "-i",
        # Subtitles and attachments: never read a character set from a file, never write
        # out (or add) attachments such as fonts.
        "-sub_charenc",
        "-dump_attachment",
        "-attach",
    }
)
# Source filters that open files or devices by themselves; our filtergraphs never need them.
# subtitles= and ass= (libass) open subtitle and font files by name.
_FORBIDDEN_FILTERS = (
    "movie=",
    "amovie=",
    "movie,",
    "lavfi",
    "sendcmd",
    "zmq",
    "subtitles=",
    "ass=",
)


@dataclass(frozen=True)
class MediaInput:
    """An input file plus the few per-input options allowed (seek and duration).

    ``decoders``, when given, are the only decoders ffmpeg may open for this input
    (``-codec_whitelist``), even while it probes the streams: the subtitle run opens
    the text subtitle decoders and nothing else.
    """

    path: Path
    options: tuple[str, ...] = ()
    decoders: tuple[str, ...] = ()


def input_guards(config: ProcessingConfig) -> list[str]:
    """The options put in front of every untrusted input."""
    return [
        "-protocol_whitelist",
        "file",
        "-format_whitelist",
        ",".join(config.allowed_formats),
        "-max_streams",
        str(config.max_streams + 1),
        "-probesize",
        str(config.probe_size),
        "-max_pixels",
        str(config.max_pixels),
    ]


def _input_url(path: Path) -> str:
    # "file:" plus an absolute path: a name such as "concat:a|b" or "http://x" is then
    # only ever a file name, whatever the protocol whitelist says.
    # abspath, not resolve(): a link's own name is what ffmpeg must see (see pipeline).
    return "file:" + os.path.abspath(path)


def build_argv(
    config: ProcessingConfig,
    tool: Tool,
    *,
    inputs: Sequence[MediaInput],
    args: Sequence[str] = (),
    progress: bool = False,
    log_level: Literal["error", "info"] = "error",
) -> list[str]:
    """Build the argv of one ffmpeg/ffprobe call with the hostile-input guards on.

    ``args`` are the output options (ffmpeg) or the report options (ffprobe); they go
    after the inputs and may not contain any flag that weakens the guards. ``log_level``
    ``info`` is for the runs whose result is a report on stderr (the loudness meters).
    """
    for token in args:
        if token.split(":", 1)[0] in _FORBIDDEN:
            raise ValueError(f"refusing ffmpeg option {token!r}")
        if any(name in token for name in _FORBIDDEN_FILTERS):
            raise ValueError(f"refusing filter in {token!r}")
    if not inputs:
        raise ValueError("at least one input is required")
    if tool is Tool.FFPROBE:
        argv = [config.ffprobe_path, "-hide_banner", "-loglevel", log_level]
    else:
        argv = [config.ffmpeg_path, "-hide_banner", "-nostdin", "-y", "-loglevel", log_level]
        if progress:
            argv += [
                "-nostats",
                "-progress",
                "pipe:1",
                "-stats_period",
                f"{config.progress_interval:g}",
            ]
    for media in inputs:
        it = iter(media.options)
        extra: list[str] = []
        for option in it:
            if option not in _INPUT_OPTIONS:
                raise ValueError(f"input option {option!r} is not allowed")
            extra += [option, next(it)]
        if media.decoders:
            if not all(_DECODER_NAME.match(name) for name in media.decoders):
                raise ValueError(f"bad decoder names {media.decoders!r}")
            extra += ["-codec_whitelist", ",".join(media.decoders)]
        argv += [*input_guards(config), *extra, "-i", _input_url(media.path)]
    argv += list(args)
    return argv
