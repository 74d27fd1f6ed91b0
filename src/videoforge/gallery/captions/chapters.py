"""Chapters written in a description, read the way YouTube reads them.

A description has chapters when it has at least three lines that start with a timecode
(``0:00 Intro``, ``1:02:03 - Outro``, ``[12:30] Q&A``), the first at 0:00, in strictly
ascending order, each chapter at least 10 seconds long. Anything else: no chapters
(never a partial list). The description is the gallery's and can change after
processing, so these are read when playback is served, not by the processor; they take
precedence over the container's chapters, as the uploader's latest word.
"""

from __future__ import annotations

import itertools
import re

from videoforge.gallery.captions.schemas import ChapterRead

MIN_CHAPTERS = 3
MIN_SECONDS = 10.0
TITLE_MAX = 100
_LINE = re.compile(
    r"^\s*[\[(]?(?P<time>(?:\d{1,2}:)?\d{1,2}:\d{2})[\])]?\s*(?:[-\u2013\u2014:|]\s*)?(?P<title>.*)$"
)


def _seconds(text: str) -> int:
    parts = [int(p) for p in text.split(":")]
    if any(p >= 60 for p in parts[1:]):
        raise ValueError(text)
    total = 0
    for part in parts:
        total = total * 60 + part
    return total


def description_chapters(description: str, duration: float | None) -> list[ChapterRead]:
    """The description's chapters, or an empty list when it has none by those rules."""
    found: list[tuple[int, str]] = []
    for line in description.splitlines():
        match = _LINE.match(line)
        if match is None:
            continue
        try:
            at = _seconds(match["time"])
        except ValueError:
            continue
        title = " ".join(match["title"].split())[:TITLE_MAX]
        found.append((at, title or f"Chapter {len(found) + 1}"))
    if len(found) < MIN_CHAPTERS or found[0][0] != 0:
        return []
    end = duration if duration and duration > found[-1][0] else None
    if end is None:
        return []  # the last chapter would start after the end of the video
    bounds = [at for at, _ in found] + [end]
    if any(b - a < MIN_SECONDS for a, b in itertools.pairwise(bounds)):
        return []  # not ascending, or a chapter too short: YouTube shows none either
    return [
        ChapterRead(start=float(at), end=float(bounds[i + 1]), title=title)
        for i, (at, title) in enumerate(found)
    ]
