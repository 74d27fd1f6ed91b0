"""Storing one job's outputs under ``outputs/{job_id}/``: as the ladder hands them out,
then the rest.

While the ladder runs, :meth:`JobOutputs.on_segments` stores every batch the pipeline
hands out (:mod:`progressive`): the segments and init sections first, then the growing
playlists that list them, so a playlist in storage never names a segment that is not
there. Once the lowest rung and the audio tracks have a stored segment, ``on_playable``
hears it (once: :attr:`JobOutputs.playable` then follows what is stored). A batch that
fails to store is not an error of the job: what was not stored goes with the final
outputs.

:meth:`JobOutputs.store_rest` then stores every final output not stored yet (a segment
already stored has the same bytes under the same key), media before the playlists and
manifests, for the same reason.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from videoforge.infra.storage.base import Storage, StorageError
from videoforge.infra.storage.keys import output_key, output_prefix
from videoforge.messages import Playable
from videoforge.processor.progressive import ReadyOutputs

if TYPE_CHECKING:
    from videoforge.processor.results import Output

log = structlog.get_logger("videoforge.processor.storing")

#: Outputs stored at once per job.
UPLOAD_CONCURRENCY = 4
#: Stored last: they name other files.
_DOCUMENT_SUFFIXES = (".m3u8", ".mpd")

PlayableCallback = Callable[[Playable], Awaitable[None]]


@dataclass(frozen=True)
class _File:
    rel_key: str
    path: Path
    content_type: str
    size: int


@dataclass
class JobOutputs:
    """What of one job's outputs is in storage (see the module docstring)."""

    storage: Storage
    job_id: uuid.UUID
    on_playable: PlayableCallback | None = None
    #: rel_key -> size of every media file stored while the ladder ran.
    stored: dict[str, int] = field(default_factory=dict)
    playable: Playable | None = None

    async def on_segments(self, ready: ReadyOutputs) -> None:
        """The pipeline's ``on_segments``: store the batch at once, in its order."""
        files = [
            _File(f.rel_key, f.path, f.content_type, f.path.stat().st_size) for f in ready.files
        ]
        media = [f for f in files if not f.rel_key.endswith(_DOCUMENT_SUFFIXES)]
        documents = [f for f in files if f.rel_key.endswith(_DOCUMENT_SUFFIXES)]
        try:
            await self._put_all(media)
            await self._put_all(documents)
        except StorageError as exc:
            log.warning("segments_store_failed", error=str(exc), files=len(files))
            return
        self.stored.update((f.rel_key, f.size) for f in media)
        if ready.stream is None:
            return
        first = self.playable is None
        self.playable = ready.stream.to_message(output_prefix(self.job_id))
        if first and self.on_playable is not None:
            await self.on_playable(self.playable)

    async def store_rest(self, outputs: Sequence[Output]) -> int:
        """Store every output not stored yet, documents last; returns how many."""
        files = [
            _File(o.rel_key, o.path, o.content_type, o.size)
            for o in outputs
            if self.stored.get(o.rel_key) != o.size
        ]
        await self._put_all([f for f in files if not f.rel_key.endswith(_DOCUMENT_SUFFIXES)])
        await self._put_all([f for f in files if f.rel_key.endswith(_DOCUMENT_SUFFIXES)])
        return len(files)

    async def _put_all(self, files: Sequence[_File]) -> None:
        """Bounded parallel uploads; the first failure cancels the rest and is raised
        (not the group), so it is classified like any other failure."""
        if not files:
            return
        limit = asyncio.Semaphore(UPLOAD_CONCURRENCY)

        async def one(file: _File) -> None:
            async with limit:
                await self.storage.put_file(
                    output_key(self.job_id, file.rel_key), file.path, content_type=file.content_type
                )

        try:
            async with asyncio.TaskGroup() as group:
                for file in files:
                    group.create_task(one(file))
        except BaseExceptionGroup as failed:
            raise failed.exceptions[0] from None
