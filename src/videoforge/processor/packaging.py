"""After the runs: check what they made, write the playlists, the DASH manifest, the
text tracks and the metadata, and list every output."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

from videoforge.processor.audio import AudioRendition
from videoforge.processor.chapters import CHAPTERS_VTT, chapters_vtt
from videoforge.processor.config import ProcessingConfig
from videoforge.processor.dash import DASH_MANIFEST, dash_manifest
from videoforge.processor.ffmpeg import MediaRejected
from videoforge.processor.ladder import PlannedRendition
from videoforge.processor.playlists import (
    MASTER_PLAYLIST,
    VariantStats,
    audio_stats,
    master_playlist,
    variant_stats,
)
from videoforge.processor.probe import ProbeResult
from videoforge.processor.remux import RemuxDecision
from videoforge.processor.results import (
    METADATA,
    AudioInfo,
    PipelineResult,
    RenditionInfo,
    SubtitleInfo,
    list_outputs,
    metadata_document,
)
from videoforge.processor.stills import CANDIDATE_POSITIONS, PREVIEW, THUMBNAIL, candidate_key
from videoforge.processor.storyboard import (
    STORYBOARD_DIR,
    STORYBOARD_VTT,
    StoryboardPlan,
    storyboard_vtt,
)
from videoforge.processor.subtitles import SubtitleRendition, subtitle_playlist


@dataclass
class Produced:
    """What the runs made, before the playlists and documents are written."""

    renditions: list[tuple[PlannedRendition, VariantStats]]
    audio: list[tuple[AudioRendition, VariantStats]]
    subtitles: list[SubtitleRendition]
    storyboard: StoryboardPlan
    notes: list[dict[str, object]]
    remux: RemuxDecision | None = None


def finish(
    outdir: Path, probe: ProbeResult, produced: Produced, config: ProcessingConfig
) -> PipelineResult:
    """Check the stills, write the playlists, manifest, text tracks and metadata, list
    every output."""
    for still in (THUMBNAIL, PREVIEW):
        if not (outdir / still).is_file() or (outdir / still).stat().st_size == 0:
            raise MediaRejected("corrupt_media", "No picture could be decoded from the video.")
    for sub in produced.subtitles:
        (outdir / sub.playlist_key).write_text(subtitle_playlist(sub, probe.duration))
    (outdir / MASTER_PLAYLIST).write_text(
        master_playlist(
            produced.renditions,
            produced.audio,
            produced.subtitles,
            audio_channels=config.audio_channels,
        )
    )
    (outdir / DASH_MANIFEST).write_text(
        dash_manifest(
            outdir,
            probe.duration,
            produced.renditions,
            produced.audio,
            produced.subtitles,
            min_buffer=config.hls_segment_seconds,
            audio_channels=config.audio_channels,
        )
    )
    chapters = CHAPTERS_VTT if probe.chapters else None
    if chapters:
        (outdir / chapters).write_text(chapters_vtt(probe.chapters))
    storyboard: str | None = STORYBOARD_VTT
    plan = produced.storyboard
    for extra in sorted((outdir / STORYBOARD_DIR).glob("sprite_*.jpg")):
        if extra.relative_to(outdir).as_posix() not in plan.sheet_keys:
            extra.unlink()  # a rounding tile past the end: nothing points at it
    if all((outdir / key).is_file() for key in plan.sheet_keys):
        (outdir / STORYBOARD_VTT).write_text(storyboard_vtt(plan, probe.duration))
    else:
        storyboard = None
        produced.notes.append(
            {"kind": "storyboard", "outcome": "dropped", "reason": "sheets missing"}
        )
    infos = [
        RenditionInfo(
            quality=r.quality,
            width=r.width,
            height=r.height,
            fps=r.fps,
            bandwidth=s.peak_bandwidth,
            average_bandwidth=s.average_bandwidth,
            codecs=s.codecs,
            mp4_key=r.mp4_key,
            playlist_key=r.playlist_key,
            mp4_size=(outdir / r.mp4_key).stat().st_size,
        )
        for r, s in produced.renditions
    ]
    audio_infos = [
        AudioInfo(
            index=a.track.index,
            language=a.track.language,
            label=a.label,
            default=a.track.default,
            playlist_key=a.playlist_key,
            bandwidth=s.peak_bandwidth,
            loudness=a.loudness.to_dict() if a.loudness else None,
            normalization=a.mode(config),
        )
        for a, s in produced.audio
    ]
    subtitle_infos = [
        SubtitleInfo(
            index=sub.track.index,
            language=sub.track.language,
            label=sub.label,
            default=sub.track.default,
            forced=sub.track.forced,
            codec=sub.track.codec,
            vtt_key=sub.vtt_key,
            playlist_key=sub.playlist_key,
        )
        for sub in produced.subtitles
    ]
    result = PipelineResult(
        probe=probe,
        renditions=infos,
        outputs=[],
        master_playlist=MASTER_PLAYLIST,
        thumbnail=THUMBNAIL,
        preview=PREVIEW,
        metadata=METADATA,
        output_dir=outdir,
        thumbnail_candidates=candidates_made(outdir),
        dash_manifest=DASH_MANIFEST,
        audio_tracks=audio_infos,
        subtitles=subtitle_infos,
        chapters=chapters,
        storyboard=storyboard,
        storyboard_sheets=plan.sheet_keys if storyboard else [],
        notes=produced.notes,
        remux=produced.remux.to_dict() if produced.remux else None,
    )
    (outdir / METADATA).write_text(json.dumps(metadata_document(result, config), indent=2) + "\n")
    outputs = list_outputs(outdir)
    if sum(output.size for output in outputs) > config.max_output_bytes:
        raise MediaRejected(
            "output_too_large",
            f"The outputs grew beyond the {config.max_output_bytes} byte limit.",
        )
    return replace(result, outputs=outputs)


def candidates_made(outdir: Path) -> list[str]:
    """The candidates' keys, without any that came out empty: a missing choice is no
    reason to fail a job that has its thumbnail."""
    made: list[str] = []
    for number in range(1, len(CANDIDATE_POSITIONS) + 1):
        path = outdir / candidate_key(number)
        if path.is_file() and path.stat().st_size > 0:
            made.append(candidate_key(number))
        else:
            path.unlink(missing_ok=True)
    return made


def collect_variants(outdir: Path, renditions: list[PlannedRendition]) -> list[VariantStats]:
    stats: list[VariantStats] = []
    for rendition in renditions:
        mp4 = outdir / rendition.mp4_key
        if not mp4.is_file() or mp4.stat().st_size == 0:
            raise MediaRejected("corrupt_media", "No video could be decoded from the file.")
        try:
            stats.append(variant_stats(outdir, rendition))
        except (OSError, ValueError):
            raise MediaRejected(
                "corrupt_media", "No video could be decoded from the file."
            ) from None
    return stats


def collect_audio(outdir: Path, audio: list[AudioRendition]) -> list[VariantStats]:
    try:
        return [audio_stats(outdir, track) for track in audio]
    except (OSError, ValueError):
        raise MediaRejected("corrupt_media", "The audio could not be decoded.") from None


def check_complete(probe: ProbeResult, stats: list[VariantStats], stderr_tail: str) -> None:
    """Refuse a source whose data ends before its container says it does (truncated).

    ffmpeg treats a cut-off file as a short one and exits 0; a video published at half
    its length would be worse than a clear failure.
    """
    produced = min(s.duration for s in stats)
    if "partial file" in stderr_tail.lower() or produced < probe.duration * 0.9 - 0.5:
        raise MediaRejected(
            "corrupt_media",
            f"The file is incomplete: only {produced:.1f} s of {probe.duration:.1f} s "
            "could be decoded.",
        )
