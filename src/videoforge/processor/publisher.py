"""What the processor's ``COMPLETED`` event says beyond the job row: everything the
gallery needs to make the video playable, with full storage keys.

Events themselves are built and sent by :mod:`videoforge.jobs.events`, as every
producer's are.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from videoforge.infra.storage.keys import output_key, output_prefix
from videoforge.jobs.models import Job

if TYPE_CHECKING:
    from videoforge.processor.results import PipelineResult


def completed_fields(job: Job, result: PipelineResult) -> dict[str, Any]:
    """The ``COMPLETED`` payload: media facts and the full keys of every output."""
    probe = result.probe
    return {
        **probe.facts(),
        "thumbnail_key": output_key(job.id, result.thumbnail),
        "thumbnail_candidates": [output_key(job.id, key) for key in result.thumbnail_candidates],
        "preview_key": output_key(job.id, result.preview),
        "hls_master_key": output_key(job.id, result.master_playlist),
        "metadata_key": output_key(job.id, result.metadata),
        "source_key": job.source_key,
        "renditions": [r.to_message(output_prefix(job.id)) for r in result.renditions],
        "dash_manifest_key": (
            output_key(job.id, result.dash_manifest) if result.dash_manifest else None
        ),
        "audio_tracks": [a.to_message(output_prefix(job.id)) for a in result.audio_tracks],
        "subtitles": [t.to_message(output_prefix(job.id)) for t in result.subtitles],
        "chapters": [{"start": c.start, "end": c.end, "title": c.title} for c in probe.chapters],
        "chapters_key": output_key(job.id, result.chapters) if result.chapters else None,
        "storyboard_key": output_key(job.id, result.storyboard) if result.storyboard else None,
    }
