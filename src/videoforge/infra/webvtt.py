"""Writing WebVTT, the format of every text track we publish (subtitles, captions,
chapters, storyboard thumbnails): timestamps and plain-text cue payloads."""

from __future__ import annotations

from collections.abc import Iterable


def vtt_timestamp(seconds: float) -> str:
    """``HH:MM:SS.mmm`` (hours always present: players accept it for any length)."""
    millis = max(0, round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


def cue_text(text: str) -> str:
    """A cue payload as plain text: markup characters escaped, no blank line (which
    would end the cue) and no ``-->`` (which would start one)."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    lines = [" ".join(line.split()).replace("--&gt;", "-&gt;") for line in escaped.splitlines()]
    return "\n".join(line for line in lines if line) or " "


def vtt_document(cues: Iterable[tuple[float, float, str]], *, escape: bool = True) -> str:
    """A WebVTT file of ``(start, end, payload)`` cues. ``escape=False`` only for payloads
    we wrote ourselves that are not text (storyboard ``sprite_0.jpg#xywh=...``)."""
    parts = ["WEBVTT", ""]
    for start, end, payload in cues:
        parts += [
            f"{vtt_timestamp(start)} --> {vtt_timestamp(end)}",
            cue_text(payload) if escape else payload,
            "",
        ]
    return "\n".join(parts) + "\n"
