"""What of a ladder can be stored and watched while ffmpeg is still writing it.

The ladder's HLS slaves write ``EVENT`` playlists (see :func:`transcode._hls_slave`):
ffmpeg's HLS muxer closes a segment, then rewrites its media playlist through a temporary
file and a rename. A segment the playlist lists is therefore finished, and the listed
duration is ffmpeg's own. :class:`GrowingLadder` reads those playlists and hands out, in
order, what was not handed out before: a folder's ``init.mp4`` with its first segment,
then the new segments, then a snapshot of each playlist that grew (copied beside the
outputs, so ffmpeg's next rename cannot change what is being uploaded). A playlist
always comes after the segments it lists, in the same batch or an earlier one.

When the ladder ends, :func:`seal_playlists` turns every media playlist into the
``VOD`` playlist the finished outputs have always had (ffmpeg already ended them with
``#EXT-X-ENDLIST``).

The watchable part (:class:`GrowingStream`) is the lowest rung with every audio track,
once each has a finished segment: what a player needs to start at 0:00.
"""

from __future__ import annotations

import math
import posixpath
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from videoforge.messages import Playable, PlayableAudio, PlayableRendition
from videoforge.processor.audio import AudioRendition
from videoforge.processor.ladder import PlannedRendition
from videoforge.processor.playlists import MASTER_PLAYLIST, avc_codec_string

_EXTINF = re.compile(r"^#EXTINF:([0-9.]+)")
_TYPE_EVENT = "#EXT-X-PLAYLIST-TYPE:EVENT"
_TYPE_VOD = "#EXT-X-PLAYLIST-TYPE:VOD"
_ENDLIST = "#EXT-X-ENDLIST"
_SEGMENT = re.compile(r"^seg_\d{5}\.m4s$")
#: Where playlist snapshots are kept (beside ``out``, never among the final outputs).
SNAPSHOT_DIR = "growing"
HLS_CONTENT_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".m4s": "video/iso.segment",
    ".mp4": "video/mp4",
}


@dataclass(frozen=True)
class ReadyFile:
    """One finished file to store now, under its final relative key."""

    rel_key: str
    path: Path
    quality: str | None

    @property
    def content_type(self) -> str:
        return HLS_CONTENT_TYPES[posixpath.splitext(self.rel_key)[1]]


@dataclass(frozen=True)
class GrowingRendition:
    """A video rung as far as it is stored."""

    quality: str
    width: int
    height: int
    codecs: str
    bandwidth: int  # the peak of its stored segments so far (with the init segment's)
    playlist_key: str
    segments: int
    seconds: float

    def to_message(self, key_prefix: str) -> PlayableRendition:
        return PlayableRendition(
            quality=self.quality,
            width=self.width,
            height=self.height,
            codecs=self.codecs,
            bandwidth=self.bandwidth,
            playlist_key=key_prefix + self.playlist_key,
            segments=self.segments,
            seconds=round(self.seconds, 3),
        )


@dataclass(frozen=True)
class GrowingAudio:
    index: int
    language: str | None
    label: str
    default: bool
    bandwidth: int
    playlist_key: str
    segments: int

    def to_message(self, key_prefix: str) -> PlayableAudio:
        return PlayableAudio(
            index=self.index,
            language=self.language,
            label=self.label,
            default=self.default,
            bandwidth=self.bandwidth,
            playlist_key=key_prefix + self.playlist_key,
            segments=self.segments,
        )


@dataclass(frozen=True)
class GrowingStream:
    """The watchable part of a ladder that is still running (relative keys)."""

    renditions: list[GrowingRendition]  # the lowest rung (what a player starts with)
    audio: list[GrowingAudio]

    def to_message(self, key_prefix: str) -> Playable:
        """The event's :class:`~videoforge.messages.Playable`; ``key_prefix`` is
        ``"outputs/{job_id}/"``."""
        return Playable(
            master_key=key_prefix + MASTER_PLAYLIST,
            renditions=[r.to_message(key_prefix) for r in self.renditions],
            audio_tracks=[a.to_message(key_prefix) for a in self.audio],
        )


@dataclass(frozen=True)
class ReadyOutputs:
    """One batch handed out while the ladder runs: store ``files`` in order (segments
    before the playlists that list them); ``stream`` is what is watchable once they
    are stored (None until the lowest rung and every audio track have a segment)."""

    files: list[ReadyFile]
    stream: GrowingStream | None


def listed_segments(text: str) -> list[tuple[str, float]]:
    """(file name, duration) of every segment a media playlist of ours lists, in order.

    Anything but a bare ``seg_NNNNN.m4s`` name ends the list: the playlist is ffmpeg's,
    but nothing outside its folder may ever be handed out because of it.
    """
    listed: list[tuple[str, float]] = []
    pending: float | None = None
    for raw in text.splitlines():
        line = raw.strip()
        match = _EXTINF.match(line)
        if match:
            pending = float(match.group(1))
        elif line and not line.startswith("#") and pending is not None:
            if not _SEGMENT.match(line):
                break
            listed.append((line, pending))
            pending = None
    return listed


@dataclass
class _Playlist:
    """One media playlist being followed."""

    playlist_key: str
    quality: str | None
    handed: int = 0  # segments handed out so far
    seconds: float = 0.0
    peak: float = 0.0  # bits/s
    total_bytes: int = 0
    codecs: str | None = None

    @property
    def folder(self) -> str:
        return posixpath.dirname(self.playlist_key)


@dataclass
class GrowingLadder:
    """Follows the ladder's media playlists under ``outdir`` (see the module docstring)."""

    outdir: Path
    renditions: Sequence[PlannedRendition]
    audio: Sequence[AudioRendition]
    snapshot_dir: Path
    _video: list[_Playlist] = field(init=False)
    _audio: list[_Playlist] = field(init=False)

    def __post_init__(self) -> None:
        self._video = [_Playlist(r.playlist_key, r.quality) for r in self.renditions]
        self._audio = [_Playlist(a.playlist_key, None) for a in self.audio]

    def scan(self) -> ReadyOutputs | None:
        """What became ready since the last scan (None when nothing did). Blocking: run
        it in a thread."""
        files: list[ReadyFile] = []
        playlists: list[ReadyFile] = []
        for followed in [*self._video, *self._audio]:
            new = self._scan_one(followed)
            if new:
                files += new
                snapshot = self.snapshot_dir / followed.playlist_key
                playlists.append(ReadyFile(followed.playlist_key, snapshot, followed.quality))
        if not files:
            return None
        return ReadyOutputs(files + playlists, self.stream())

    def _scan_one(self, followed: _Playlist) -> list[ReadyFile]:
        path = self.outdir / followed.playlist_key
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError):
            return []  # not written yet (ffmpeg writes it after the first segment)
        listed = listed_segments(text)
        new = listed[followed.handed :]
        if not new:
            return []
        folder = self.outdir / followed.folder
        out: list[ReadyFile] = []
        if followed.handed == 0:
            init = folder / "init.mp4"
            if followed.quality is not None:
                try:
                    followed.codecs = avc_codec_string(init)
                except (OSError, ValueError):
                    return []  # not readable yet: the next look tries again
            out.append(ReadyFile(f"{followed.folder}/init.mp4", init, followed.quality))
            followed.total_bytes += init.stat().st_size
        for name, duration in new:
            size = (folder / name).stat().st_size
            followed.peak = max(followed.peak, size * 8 / max(duration, 0.001))
            followed.total_bytes += size
            followed.seconds += duration
            out.append(ReadyFile(f"{followed.folder}/{name}", folder / name, followed.quality))
        followed.handed = len(listed)
        # The snapshot is the text just read (it lists exactly what was handed out), left
        # open even when ffmpeg has just ended it: the end comes with the final outputs.
        snapshot = self.snapshot_dir / followed.playlist_key
        snapshot.parent.mkdir(parents=True, exist_ok=True)
        snapshot.write_text(
            "".join(line for line in text.splitlines(keepends=True) if line.strip() != _ENDLIST)
        )
        return out

    def stream(self) -> GrowingStream | None:
        """The lowest rung and every audio track, once each has a stored segment."""
        if not self._video:
            return None
        lowest = self._video[-1]
        if lowest.handed == 0 or any(a.handed == 0 for a in self._audio):
            return None
        planned = self.renditions[-1]
        average = lowest.total_bytes * 8 / max(lowest.seconds, 0.001)
        rendition = GrowingRendition(
            quality=planned.quality,
            width=planned.width,
            height=planned.height,
            codecs=lowest.codecs or "",
            bandwidth=math.ceil(max(lowest.peak, average)),
            playlist_key=planned.playlist_key,
            segments=lowest.handed,
            seconds=lowest.seconds,
        )
        audio = [
            GrowingAudio(
                index=a.track.index,
                language=a.track.language,
                label=a.label,
                default=a.track.default,
                bandwidth=math.ceil(followed.peak),
                playlist_key=a.playlist_key,
                segments=followed.handed,
            )
            for a, followed in zip(self.audio, self._audio, strict=True)
        ]
        return GrowingStream([rendition], audio)

    def discard_snapshots(self) -> None:
        shutil.rmtree(self.snapshot_dir, ignore_errors=True)


def seal_playlists(outdir: Path, playlist_keys: Sequence[str]) -> None:
    """The finished ladder's media playlists as ``VOD`` (ffmpeg wrote them as ``EVENT``
    so that they could be followed; it ended each with ``#EXT-X-ENDLIST``)."""
    for key in playlist_keys:
        path = outdir / key
        if not path.is_file():
            continue  # a rung that wrote nothing: the collection step says so
        text = path.read_text()
        if _TYPE_EVENT in text:
            path.write_text(text.replace(_TYPE_EVENT, _TYPE_VOD, 1))
