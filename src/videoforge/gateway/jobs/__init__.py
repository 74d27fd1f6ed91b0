"""The gateway's face of the job domain (:mod:`videoforge.jobs`): the ``/api/jobs``
routes (:mod:`.api`) and the live progress stream over SSE (:mod:`.stream`)."""
