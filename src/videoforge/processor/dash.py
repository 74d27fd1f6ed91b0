"""A DASH manifest over the very same CMAF (fMP4) files as the HLS playlists.

``hls/manifest.mpd`` sits next to ``hls/master.m3u8`` and names the same ``init.mp4`` and
``seg_*.m4s`` files: no media is written twice. It is a static MPD with one
``SegmentList`` per representation (explicit ``SegmentURL``s, not a template) because
the gallery signs every object URL on its own, and a ``$Number$`` template cannot carry
a signature per segment. Segment times come from the files themselves (``mdhd``
timescale, ``tfdt`` decode times), so the timeline is what a player will find in them.
Text tracks are sidecar WebVTT files (``text/vtt`` adaptation sets), as dash.js and
Shaka read them. Every URL is relative to the manifest.
"""

from __future__ import annotations

import posixpath
import struct
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from videoforge.processor.audio import AudioRendition
from videoforge.processor.ladder import PlannedRendition
from videoforge.processor.playlists import VariantStats
from videoforge.processor.subtitles import SubtitleRendition

DASH_MANIFEST = "hls/manifest.mpd"
MPD_NS = "urn:mpeg:dash:schema:mpd:2011"
_BASE = "hls"


def _box_payload(data: bytes, box: bytes) -> tuple[int, int] | None:
    """(version, offset of the field after version+flags) of the first ``box``."""
    at = data.find(box)
    if at < 4 or at + 8 > len(data):
        return None
    return data[at + 4], at + 8


def timescale(init: Path) -> int:
    """The track's timescale from the ``mdhd`` box of its init segment."""
    data = init.read_bytes()[:1_000_000]
    found = _box_payload(data, b"mdhd")
    if found is None:
        raise ValueError(f"no mdhd box in {init.name}")
    version, at = found
    at += 16 if version == 1 else 8  # creation and modification times
    (scale,) = struct.unpack_from(">I", data, at)
    if scale <= 0:
        raise ValueError(f"bad timescale in {init.name}")
    return int(scale)


def decode_time(segment: Path) -> int | None:
    """The ``tfdt`` base media decode time of a media segment (None if absent)."""
    with segment.open("rb") as handle:
        data = handle.read(4096)
    found = _box_payload(data, b"tfdt")
    if found is None:
        return None
    version, at = found
    fmt = ">Q" if version == 1 else ">I"
    if at + struct.calcsize(fmt) > len(data):
        return None
    return int(struct.unpack_from(fmt, data, at)[0])


def _duration(seconds: float) -> str:
    return f"PT{max(0.0, seconds):.3f}S"


def _segment_list(parent: ET.Element, outdir: Path, init_key: str, stats: VariantStats) -> None:
    scale = timescale(outdir / init_key)
    starts: list[int] = []
    elapsed = 0.0
    for key, duration in zip(stats.segments, stats.durations, strict=True):
        measured = decode_time(outdir / key)
        starts.append(measured if measured is not None else round(elapsed * scale))
        elapsed += duration
    ends = [*starts[1:], starts[-1] + round(stats.durations[-1] * scale)]
    segment_list = ET.SubElement(parent, "SegmentList", timescale=str(scale))
    ET.SubElement(segment_list, "Initialization", sourceURL=_rel(init_key))
    timeline = ET.SubElement(segment_list, "SegmentTimeline")
    for i, (start, end) in enumerate(zip(starts, ends, strict=True)):
        attrs = {"d": str(max(1, end - start))}
        if i == 0 or starts[i - 1] + int(timeline[-1].get("d", "0")) != start:
            attrs = {"t": str(start), **attrs}
        ET.SubElement(timeline, "S", attrs)
    for key in stats.segments:
        ET.SubElement(segment_list, "SegmentURL", media=_rel(key))


def _rel(key: str) -> str:
    return posixpath.relpath(key, _BASE)


def dash_manifest(
    outdir: Path,
    duration: float,
    video: Sequence[tuple[PlannedRendition, VariantStats]],
    audio: Sequence[tuple[AudioRendition, VariantStats]] = (),
    subtitles: Sequence[SubtitleRendition] = (),
    *,
    min_buffer: float = 4.0,
    audio_channels: int = 2,
) -> str:
    """The MPD document (UTF-8 XML text)."""
    mpd = ET.Element(
        "MPD",
        {
            "xmlns": MPD_NS,
            "type": "static",
            "profiles": "urn:mpeg:dash:profile:isoff-main:2011",
            "mediaPresentationDuration": _duration(duration),
            "minBufferTime": _duration(min_buffer),
        },
    )
    period = ET.SubElement(mpd, "Period", id="0", start="PT0S")
    ids = iter(range(1_000))
    video_set = ET.SubElement(
        period,
        "AdaptationSet",
        id=str(next(ids)),
        contentType="video",
        mimeType="video/mp4",
        segmentAlignment="true",
        startWithSAP="1",
    )
    for rendition, stats in sorted(video, key=lambda e: e[1].peak_bandwidth, reverse=True):
        representation = ET.SubElement(
            video_set,
            "Representation",
            id=rendition.quality,
            bandwidth=str(stats.peak_bandwidth),
            width=str(rendition.width),
            height=str(rendition.height),
            frameRate=f"{rendition.fps:g}",
            codecs=stats.codecs,
        )
        _segment_list(representation, outdir, rendition.init_key, stats)
    for track, stats in audio:
        attrs = {
            "id": str(next(ids)),
            "contentType": "audio",
            "mimeType": "audio/mp4",
            "segmentAlignment": "true",
            "startWithSAP": "1",
        }
        if track.track.language:
            attrs["lang"] = track.track.language
        audio_set = ET.SubElement(period, "AdaptationSet", attrs)
        ET.SubElement(
            audio_set,
            "Role",
            schemeIdUri="urn:mpeg:dash:role:2011",
            value="main" if track.track.default else "alternate",
        )
        ET.SubElement(audio_set, "Label").text = track.label
        representation = ET.SubElement(
            audio_set,
            "Representation",
            id=track.name,
            bandwidth=str(stats.peak_bandwidth),
            codecs=stats.codecs,
            audioSamplingRate="48000",
        )
        ET.SubElement(
            representation,
            "AudioChannelConfiguration",
            schemeIdUri="urn:mpeg:dash:23003:3:audio_channel_configuration:2011",
            value=str(audio_channels),
        )
        _segment_list(representation, outdir, track.init_key, stats)
    for sub in subtitles:
        attrs = {"id": str(next(ids)), "contentType": "text", "mimeType": "text/vtt"}
        if sub.track.language:
            attrs["lang"] = sub.track.language
        text_set = ET.SubElement(period, "AdaptationSet", attrs)
        ET.SubElement(
            text_set,
            "Role",
            schemeIdUri="urn:mpeg:dash:role:2011",
            value="forced-subtitle" if sub.track.forced else "subtitle",
        )
        ET.SubElement(text_set, "Label").text = sub.label
        representation = ET.SubElement(text_set, "Representation", id=sub.name, bandwidth="256")
        ET.SubElement(representation, "BaseURL").text = _rel(sub.vtt_key)
    ET.indent(mpd)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(mpd, encoding="unicode") + "\n"
