"""Chapters as a WebVTT chapters track (``kind="chapters"`` for players).

The processor writes the container's chapters (ffprobe ``-show_chapters``, read by
:mod:`probe`). Chapters written as timecodes in a video's description are the
gallery's to read, because the description is the gallery's and can change after
processing; it serves those in place of these.
"""

from __future__ import annotations

from collections.abc import Sequence

from videoforge.infra.webvtt import vtt_document
from videoforge.processor.tracks import Chapter

CHAPTERS_VTT = "chapters.vtt"


def chapters_vtt(chapters: Sequence[Chapter]) -> str:
    # Titles come from the uploader's file: escaped, so they are text and never markup.
    return vtt_document((c.start, c.end, c.title) for c in chapters)
