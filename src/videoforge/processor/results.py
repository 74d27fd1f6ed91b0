"""What the pipeline hands back: the outputs, the renditions and tracks as produced,
and the job's metadata document."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from videoforge.messages import AudioTrackMessage, Rendition, TextTrackMessage
from videoforge.processor.config import ProcessingConfig
from videoforge.processor.probe import ProbeResult
from videoforge.processor.progressive import HLS_CONTENT_TYPES
from videoforge.processor.stills import PREVIEW, THUMBNAIL, THUMBNAIL_CANDIDATES_DIR
from videoforge.processor.storyboard import STORYBOARD_DIR

METADATA = "metadata.json"
OutputKind = Literal["video", "hls", "thumbnail", "gif", "metadata"]


@dataclass(frozen=True)
class Output:
    """One file produced for a job."""

    rel_key: str
    path: Path
    kind: OutputKind
    content_type: str
    quality: str | None
    size: int


@dataclass(frozen=True)
class RenditionInfo:
    """One rendition as produced; :meth:`to_message` gives the wire :class:`Rendition`."""

    quality: str
    width: int
    height: int
    fps: float
    bandwidth: int  # peak bits/s, as in the master playlist's BANDWIDTH
    average_bandwidth: int
    codecs: str
    mp4_key: str
    playlist_key: str
    mp4_size: int

    def to_message(self, key_prefix: str = "") -> Rendition:
        """The event's rendition; ``key_prefix`` is e.g. ``"outputs/{job_id}/"``."""
        return Rendition(
            quality=self.quality,
            width=self.width,
            height=self.height,
            bandwidth=self.bandwidth,
            mp4_key=key_prefix + self.mp4_key,
            playlist_key=key_prefix + self.playlist_key,
        )


@dataclass(frozen=True)
class AudioInfo:
    """One audio rendition as produced (for the event and the metadata document)."""

    index: int
    language: str | None
    label: str
    default: bool
    playlist_key: str
    bandwidth: int
    loudness: dict[str, float] | None  # the source track's EBU R128 figures
    normalization: str  # linear, limited, silent, off, unmeasured

    def to_message(self, key_prefix: str = "") -> AudioTrackMessage:
        return AudioTrackMessage(
            index=self.index,
            language=self.language,
            label=self.label,
            default=self.default,
            playlist_key=key_prefix + self.playlist_key,
        )


@dataclass(frozen=True)
class SubtitleInfo:
    """One text track extracted from the source."""

    index: int
    language: str | None
    label: str
    default: bool
    forced: bool
    codec: str
    vtt_key: str
    playlist_key: str

    def to_message(self, key_prefix: str = "") -> TextTrackMessage:
        return TextTrackMessage(
            index=self.index,
            language=self.language,
            label=self.label,
            default=self.default,
            forced=self.forced,
            vtt_key=key_prefix + self.vtt_key,
            playlist_key=key_prefix + self.playlist_key,
        )


@dataclass(frozen=True)
class PipelineResult:
    """Everything :func:`process_file` made, plus what the probe learnt."""

    probe: ProbeResult
    renditions: list[RenditionInfo]
    outputs: list[Output]
    master_playlist: str
    thumbnail: str
    preview: str
    metadata: str
    output_dir: Path
    #: The thumbnail candidates that were made, in time order (``thumbnails/N.jpg``).
    thumbnail_candidates: list[str] = field(default_factory=list)
    dash_manifest: str | None = None
    audio_tracks: list[AudioInfo] = field(default_factory=list)
    subtitles: list[SubtitleInfo] = field(default_factory=list)
    chapters: str | None = None  # chapters.vtt, when the source has chapters
    storyboard: str | None = None  # the thumbnails WebVTT track
    storyboard_sheets: list[str] = field(default_factory=list)
    notes: list[dict[str, object]] = field(default_factory=list)
    # Whether the top rung is the source's own video (remux.py), and why (or why not).
    remux: dict[str, object] | None = None

    @property
    def total_size(self) -> int:
        return sum(output.size for output in self.outputs)


def metadata_document(result: PipelineResult, config: ProcessingConfig) -> dict[str, Any]:
    return {
        "version": 2,
        "source": result.probe.to_dict(),
        "renditions": [asdict(info) for info in result.renditions],
        "audio": [asdict(info) for info in result.audio_tracks],
        "loudness": {
            "normalization": config.loudness_normalization,
            "target_lufs": config.loudness_target,
            "true_peak_dbtp": config.loudness_true_peak,
        },
        "subtitles": [asdict(info) for info in result.subtitles],
        "hls_master": result.master_playlist,
        "dash_manifest": result.dash_manifest,
        "chapters": result.chapters,
        "storyboard": result.storyboard,
        "storyboard_sheets": result.storyboard_sheets,
        "thumbnail": result.thumbnail,
        "thumbnail_candidates": result.thumbnail_candidates,
        "preview": result.preview,
        # Tracks that were skipped or dropped, and why: never a reason to fail the job.
        "notes": result.notes,
        "remux": result.remux,
    }


CONTENT_TYPES = {
    **HLS_CONTENT_TYPES,
    ".mpd": "application/dash+xml",
    ".vtt": "text/vtt",
    ".jpg": "image/jpeg",
    ".gif": "image/gif",
    ".json": "application/json",
}


def list_outputs(outdir: Path) -> list[Output]:
    outputs: list[Output] = []
    for path in sorted(p for p in outdir.rglob("*") if p.is_file()):
        rel_key = path.relative_to(outdir).as_posix()
        parts = rel_key.split("/")
        kind: OutputKind
        quality: str | None = None
        if parts[0] == "hls":
            kind = "hls"
            quality = parts[1] if len(parts) == 3 else None
        elif parts[0] == STORYBOARD_DIR and path.suffix == ".jpg":
            kind = "thumbnail"
        elif parts[0] == "mp4":
            kind, quality = "video", path.stem
        elif rel_key == THUMBNAIL or parts[0] == THUMBNAIL_CANDIDATES_DIR:
            kind = "thumbnail"
        elif rel_key == PREVIEW:
            kind = "gif"
        else:
            kind = "metadata"
        outputs.append(
            Output(
                rel_key=rel_key,
                path=path,
                kind=kind,
                content_type=CONTENT_TYPES.get(path.suffix, "application/octet-stream"),
                quality=quality,
                size=path.stat().st_size,
            )
        )
    return outputs
