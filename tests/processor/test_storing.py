"""A job's outputs stored as the ladder hands them out, then the rest (the embedded store
on disk; the order of writes is recorded on the way through)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from videoforge.infra.storage.base import StorageError
from videoforge.infra.storage.keys import output_key
from videoforge.infra.storage.local.store import LocalStorage
from videoforge.messages import Playable
from videoforge.processor.progressive import (
    HLS_CONTENT_TYPES,
    GrowingRendition,
    GrowingStream,
    ReadyFile,
    ReadyOutputs,
)
from videoforge.processor.results import Output
from videoforge.processor.storing import JobOutputs


class Recording(LocalStorage):
    """The real local store, remembering the order of its writes; ``fail`` makes the
    next writes fail as an unreachable store would."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, signing_key=b"k" * 32)
        self.puts: list[str] = []
        self.fail = False

    async def put_file(self, key: str, path: Path, **kwargs: Any) -> None:  # type: ignore[override]
        if self.fail:
            raise StorageError("store unreachable")
        await super().put_file(key, path, **kwargs)
        self.puts.append(key)


def _file(root: Path, rel_key: str, data: bytes) -> Path:
    path = root / rel_key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _output(root: Path, rel_key: str) -> Output:
    """A final output as the pipeline lists it (kind and quality do not matter here)."""
    path = root / rel_key
    content_type = HLS_CONTENT_TYPES[path.suffix]
    return Output(rel_key, path, "hls", content_type, None, path.stat().st_size)


def _stream() -> GrowingStream:
    rung = GrowingRendition(
        "mobile", 640, 360, "avc1.64001e", 1000, "hls/mobile/index.m3u8", 1, 4.0
    )
    return GrowingStream([rung], [])


@pytest.fixture
def store(tmp_path: Path) -> Recording:
    return Recording(tmp_path / "objects")


async def test_batches_are_stored_in_order_and_the_rest_is_not_stored_twice(
    tmp_path: Path, store: Recording
) -> None:
    job = uuid.uuid4()
    out = tmp_path / "out"
    heard: list[Playable] = []

    async def on_playable(playable: Playable) -> None:
        heard.append(playable)

    outputs = JobOutputs(store, job, on_playable=on_playable)
    files = [
        ReadyFile("hls/mobile/init.mp4", _file(out, "hls/mobile/init.mp4", b"init"), "mobile"),
        ReadyFile(
            "hls/mobile/seg_00000.m4s", _file(out, "hls/mobile/seg_00000.m4s", b"s0"), "mobile"
        ),
        ReadyFile(
            "hls/mobile/index.m3u8", _file(tmp_path, "snap/index.m3u8", b"#EXTM3U\n"), "mobile"
        ),
    ]
    await outputs.on_segments(ReadyOutputs(files, None))
    assert heard == []  # nothing watchable said yet
    assert store.puts[-1] == output_key(job, "hls/mobile/index.m3u8")  # after its segments
    assert (await store.get_bytes(output_key(job, "hls/mobile/seg_00000.m4s"))) == b"s0"
    info = await store.head(output_key(job, "hls/mobile/seg_00000.m4s"))
    assert info is not None
    assert info.content_type == "video/iso.segment"

    seg1 = ReadyFile(
        "hls/mobile/seg_00001.m4s", _file(out, "hls/mobile/seg_00001.m4s", b"s1"), "mobile"
    )
    await outputs.on_segments(ReadyOutputs([seg1, files[2]], _stream()))
    assert len(heard) == 1
    assert heard[0].master_key == f"outputs/{job}/hls/master.m3u8"
    assert heard[0].renditions[0].playlist_key == f"outputs/{job}/hls/mobile/index.m3u8"

    # The final outputs: what was stored is not stored again; the rest is, documents last.
    _file(out, "hls/mobile/index.m3u8", b"#EXTM3U\n#EXT-X-ENDLIST\n")
    _file(out, "hls/mobile/seg_00002.m4s", b"s2")
    _file(out, "hls/master.m3u8", b"#EXTM3U\n")
    _file(out, "mp4/mobile.mp4", b"mp4")
    rest = [
        _output(out, key)
        for key in (
            "hls/mobile/init.mp4",
            "hls/mobile/seg_00000.m4s",
            "hls/mobile/seg_00001.m4s",
            "hls/mobile/seg_00002.m4s",
            "hls/mobile/index.m3u8",
            "hls/master.m3u8",
            "mp4/mobile.mp4",
        )
    ]
    store.puts.clear()
    assert await outputs.store_rest(rest) == 4
    assert set(store.puts[:2]) == {
        output_key(job, "hls/mobile/seg_00002.m4s"),
        output_key(job, "mp4/mobile.mp4"),
    }
    assert set(store.puts[2:]) == {
        output_key(job, "hls/mobile/index.m3u8"),
        output_key(job, "hls/master.m3u8"),
    }
    assert (await store.get_bytes(output_key(job, "hls/mobile/index.m3u8"))).endswith(
        b"#EXT-X-ENDLIST\n"
    )


async def test_a_batch_the_store_refuses_goes_with_the_final_outputs(
    tmp_path: Path, store: Recording
) -> None:
    job = uuid.uuid4()
    out = tmp_path / "out"
    outputs = JobOutputs(store, job)
    seg = _file(out, "hls/mobile/seg_00000.m4s", b"s0")
    store.fail = True
    await outputs.on_segments(
        ReadyOutputs([ReadyFile("hls/mobile/seg_00000.m4s", seg, "mobile")], _stream())
    )
    assert outputs.playable is None  # nothing watchable was announced
    store.fail = False
    rest = [_output(out, "hls/mobile/seg_00000.m4s")]
    assert await outputs.store_rest(rest) == 1
    assert await store.get_bytes(output_key(job, "hls/mobile/seg_00000.m4s")) == b"s0"
