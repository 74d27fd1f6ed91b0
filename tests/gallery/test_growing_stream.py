"""A video still processing plays from its stored segments (issue 15, watch while it
processes): an EVENT stream of the lowest rung, signed, for those who may see the video,
then the full VOD ladder once the job completed; a failed or cancelled job's partial
outputs stop being served and are deleted through the outbox. Local store: signatures
are really checked when the URLs are fetched."""

from __future__ import annotations

import dataclasses
import uuid
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from videoforge.gallery import deletions
from videoforge.gallery.events import consume_once
from videoforge.gallery.models import GalleryVideo, VideoStatus, Visibility
from videoforge.infra.db import utcnow
from videoforge.infra.runtime import Infra
from videoforge.infra.storage.s3.store import S3Storage
from videoforge.messages import JobEvent, JobStatus, Playable, PlayableAudio, PlayableRendition

from .conftest import SeedVideo, Users
from .test_events import event

GROWING = """#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:4
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-PLAYLIST-TYPE:EVENT
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MAP:URI="init.mp4"
#EXTINF:4.000000,
seg_00000.m4s
#EXTINF:4.000000,
seg_00001.m4s
"""

FINISHED = """#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:4
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-PLAYLIST-TYPE:VOD
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MAP:URI="init.mp4"
#EXTINF:4.000000,
seg_00000.m4s
#EXTINF:4.000000,
seg_00001.m4s
#EXTINF:1.500000,
seg_00002.m4s
#EXT-X-ENDLIST
"""

FINAL_MASTER = """#EXTM3U
#EXT-X-VERSION:7
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-STREAM-INF:BANDWIDTH=900000,RESOLUTION=854x480,CODECS="avc1.64001e"
480p/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=300000,RESOLUTION=640x360,CODECS="avc1.64001e"
mobile/index.m3u8
"""


def playable(job: uuid.UUID, segments: int = 2) -> Playable:
    base = f"outputs/{job}/hls"
    return Playable(
        master_key=f"{base}/master.m3u8",
        renditions=[
            PlayableRendition(
                quality="mobile",
                width=640,
                height=360,
                codecs="avc1.64001e",
                bandwidth=400_000,
                playlist_key=f"{base}/mobile/index.m3u8",
                segments=segments,
                seconds=4.0 * segments,
            )
        ],
        audio_tracks=[
            PlayableAudio(
                index=0,
                label="English",
                language="en",
                default=True,
                bandwidth=130_000,
                playlist_key=f"{base}/audio-0/index.m3u8",
                segments=segments,
            )
        ],
    )


async def _store(infra: Infra, key: str, data: bytes) -> None:
    await infra.storage.put_bytes(key, data, content_type="application/octet-stream")


async def _send(infra: Infra, e: JobEvent) -> None:
    await infra.queues.events.send(e.dumps())
    assert await consume_once(infra, wait_seconds=1) == 1


@pytest.fixture
async def processing(infra: Infra, users: Users, seed_video: SeedVideo) -> GalleryVideo:
    """A private video whose job stored two segments of its lowest rung and its audio
    (and of a higher rung, not yet to be served); a third segment is not stored yet."""
    video = await seed_video(
        users.owner_id,
        status=VideoStatus.UPLOADED,
        visibility=Visibility.PRIVATE,
        s3_key=f"originals/{users.owner_id}/{uuid.uuid4().hex}/source",
    )
    job = uuid.uuid4()
    base = f"outputs/{job}/hls"
    for folder in ("mobile", "audio-0", "480p"):
        await _store(infra, f"{base}/{folder}/index.m3u8", GROWING.encode())
        for name in ("init.mp4", "seg_00000.m4s", "seg_00001.m4s"):
            await _store(infra, f"{base}/{folder}/{name}", f"{folder}/{name}".encode())
    await _send(infra, event(video, job, 1, JobStatus.PROCESSING, progress=10))
    video.job_id = job
    return video


def _uris(playlist: str) -> list[str]:
    found = []
    for line in playlist.splitlines():
        if 'URI="' in line:
            found.append(line.split('URI="', 1)[1].split('"', 1)[0])
        elif line and not line.startswith("#"):
            found.append(line)
    return found


async def _fetch_media(client: httpx.AsyncClient, variant_url: str, text: str) -> list[bytes]:
    got = []
    for uri in _uris(text):
        assert "/storage/" in uri, uri  # a signed storage URL, never a bare key
        response = await client.get(urljoin(variant_url, uri))
        assert response.status_code == 200, (uri, response.text)
        got.append(response.content)
    return got


async def test_a_processing_video_plays_its_stored_segments_then_the_full_ladder(
    client: httpx.AsyncClient, infra: Infra, users: Users, processing: GalleryVideo
) -> None:
    video, job = processing, processing.job_id
    assert job is not None
    stream_url = f"/api/gallery/stream/{video.id}"

    # Processing, nothing stored yet: not playable.
    r = await client.get(stream_url, headers=users.owner)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "video_not_ready"

    await _send(
        infra, event(video, job, 2, JobStatus.PROCESSING, progress=20, playable=playable(job))
    )
    assert (await client.get(f"/api/gallery/videos/{video.id}", headers=users.owner)).json()[
        "playable"
    ] is True

    # Visibility is unchanged: a private processing video is only its owner's (and admins').
    assert (await client.get(stream_url)).status_code == 404
    assert (await client.get(stream_url, headers=users.other)).status_code == 404
    assert (await client.get(stream_url, headers=users.admin)).status_code == 200
    r = await client.get(stream_url, headers=users.owner)
    assert r.status_code == 200, r.text
    urls = r.json()
    assert urls["partial"] is True
    assert urls["renditions"] == []
    assert urls["dash"] is None
    assert urls["original"] is None

    master = await client.get(urls["hls"])
    assert master.status_code == 200, master.text
    assert master.headers["content-type"].startswith("application/vnd.apple.mpegurl")
    variants = [line for line in master.text.splitlines() if line.startswith("#EXT-X-STREAM-INF")]
    assert len(variants) == 1  # the lowest rung only: higher qualities come at the end
    assert "RESOLUTION=640x360" in variants[0]
    assert 'CODECS="avc1.64001e,mp4a.40.2"' in variants[0]
    assert 'AUDIO="audio"' in variants[0]
    assert "480p" not in master.text
    playlists = _uris(master.text)
    assert len(playlists) == 2  # the audio track and the rung, token-signed
    assert all(".m3u8?token=" in uri for uri in playlists)

    for uri in playlists:
        variant_url = urljoin(urls["hls"], uri)
        variant = await client.get(variant_url)
        assert variant.status_code == 200, variant.text
        assert "#EXT-X-PLAYLIST-TYPE:EVENT" in variant.text
        assert "#EXT-X-ENDLIST" not in variant.text
        folder = urlsplit(variant_url).path.split("/")[-2]
        media = await _fetch_media(client, variant_url, variant.text)
        # init + the two stored segments, nothing else
        assert media == [
            f"{folder}/{n}".encode() for n in ("init.mp4", "seg_00000.m4s", "seg_00001.m4s")
        ]

    # A higher rung's playlist exists in storage but is not served before the end.
    token = urls["hls"].split("token=", 1)[1]
    higher = await client.get(f"{stream_url}/hls/480p/index.m3u8?token={token}")
    assert higher.status_code == 404

    # An event naming playlists outside the job's outputs is not believed: what was
    # served stays served, nothing else is signed.
    elsewhere = f"originals/{users.owner_id}/x"
    foreign = Playable(
        master_key=f"{elsewhere}/master.m3u8",
        renditions=[
            r.model_copy(update={"playlist_key": f"{elsewhere}/index.m3u8"})
            for r in playable(job).renditions
        ],
    )
    await _send(infra, event(video, job, 3, JobStatus.PROCESSING, playable=foreign))
    master = await client.get(urls["hls"])
    assert master.status_code == 200
    assert [u.split("?")[0] for u in _uris(master.text)] == [
        "audio-0/index.m3u8",
        "mobile/index.m3u8",
    ]
    await _send(infra, event(video, job, 4, JobStatus.PROCESSING, playable=playable(job)))

    # A later progress event that says nothing of it keeps the stream playable.
    await _send(infra, event(video, job, 5, JobStatus.UPLOADING, progress=100))
    assert (await client.get(urls["hls"])).status_code == 200

    # Handed back for another attempt (a transient failure): it starts over, and is
    # served again once the new attempt says so.
    await _send(infra, event(video, job, 6, JobStatus.PENDING))
    assert (await client.get(stream_url, headers=users.owner)).status_code == 409
    await _send(infra, event(video, job, 7, JobStatus.DOWNLOADING))
    await _send(infra, event(video, job, 8, JobStatus.PROCESSING, playable=playable(job)))
    assert (await client.get(stream_url, headers=users.owner)).status_code == 200

    # Completed: the job's own master and VOD playlists with their end.
    base = f"outputs/{job}/hls"
    await _store(infra, f"{base}/master.m3u8", FINAL_MASTER.encode())
    for folder in ("mobile", "480p"):
        await _store(infra, f"{base}/{folder}/index.m3u8", FINISHED.encode())
        await _store(infra, f"{base}/{folder}/seg_00002.m4s", f"{folder}/seg_00002.m4s".encode())
    await _send(
        infra,
        event(video, job, 9, JobStatus.COMPLETED, hls_master_key=f"{base}/master.m3u8"),
    )
    assert (await client.get(f"/api/gallery/videos/{video.id}", headers=users.owner)).json()[
        "playable"
    ] is False
    r = await client.get(stream_url, headers=users.owner)
    assert r.status_code == 200
    done = r.json()
    assert done["partial"] is False
    master = await client.get(done["hls"])
    assert len([x for x in master.text.splitlines() if x.startswith("#EXT-X-STREAM-INF")]) == 2
    variant_url = urljoin(done["hls"], _uris(master.text)[-1])
    variant = await client.get(variant_url)
    assert "#EXT-X-PLAYLIST-TYPE:VOD" in variant.text
    assert variant.text.rstrip().endswith("#EXT-X-ENDLIST")
    assert len(await _fetch_media(client, variant_url, variant.text)) == 4


@pytest.mark.parametrize("ending", [JobStatus.FAILED, JobStatus.CANCELLED])
async def test_a_failed_or_cancelled_job_takes_its_partial_outputs_down(
    client: httpx.AsyncClient,
    infra: Infra,
    users: Users,
    processing: GalleryVideo,
    ending: JobStatus,
) -> None:
    video, job = processing, processing.job_id
    assert job is not None
    unrelated = f"outputs/{uuid.uuid4()}/hls/mobile/seg_00000.m4s"
    await _store(infra, unrelated, b"another job's")
    await _send(infra, event(video, job, 2, JobStatus.PROCESSING, playable=playable(job)))
    urls = (await client.get(f"/api/gallery/stream/{video.id}", headers=users.owner)).json()
    master = await client.get(urls["hls"])
    variant_url = urljoin(urls["hls"], _uris(master.text)[-1])
    segment = urljoin(variant_url, _uris((await client.get(variant_url)).text)[-1])
    assert (await client.get(segment)).status_code == 200

    await _send(infra, event(video, job, 3, ending, error="stopped"))

    # The gallery stops serving it at once, whatever the tokens already handed out...
    assert (await client.get(urls["hls"])).status_code == 409
    assert (
        await client.get(f"/api/gallery/stream/{video.id}", headers=users.owner)
    ).status_code == 409
    # ... and the outbox deleted what the run had stored (nothing of another job's).
    assert [o.key async for o in infra.storage.list(f"outputs/{job}/")] == []
    assert await infra.storage.head(unrelated) is not None
    assert (await client.get(segment)).status_code == 404


async def test_a_job_retried_before_the_outbox_could_delete_keeps_its_new_outputs(
    client: httpx.AsyncClient,
    infra: Infra,
    users: Users,
    processing: GalleryVideo,
    moto_endpoint: str,
    unique: str,
) -> None:
    """Storage is down when the job fails (the delete waits in the outbox); the job is
    retried under the same id before the sweep comes: the sweep must not delete what
    the new attempt stores under that prefix."""
    video, job = processing, processing.job_id
    assert job is not None
    down = S3Storage(f"missing-{unique}", endpoint_url=moto_endpoint, path_style=True)
    await infra.queues.events.send(event(video, job, 2, JobStatus.FAILED, error="boom").dumps())
    assert await consume_once(dataclasses.replace(infra, storage=down), wait_seconds=1) == 1
    kept = f"outputs/{job}/hls/mobile/seg_00000.m4s"
    assert await infra.storage.head(kept) is not None  # the delete is waiting

    # Retried: the same job runs again and is stored again.
    await _send(infra, event(video, job, 3, JobStatus.PENDING))
    await _send(infra, event(video, job, 4, JobStatus.PROCESSING, playable=playable(job)))
    await deletions.sweep_deletions(infra, now=utcnow() + deletions.MAX_BACKOFF)
    assert await infra.storage.head(kept) is not None
    assert await deletions.pending_count(infra.sessions, now=utcnow() + deletions.MAX_BACKOFF) == 0
    r = await client.get(f"/api/gallery/stream/{video.id}", headers=users.owner)
    assert r.status_code == 200
