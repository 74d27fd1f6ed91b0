"""HTTP endpoints for the local store's signed URLs (``/storage/...``), in :mod:`.routes`.

Mounted by the embedded app and the gallery. The store comes from
``request.app.state.infra.storage``; when that is not a :class:`LocalStorage` (the
deployment uses S3) every route answers 404.

- ``GET|HEAD /storage/o/{key}``: download, with single ``Range`` requests (206/416),
  ``If-None-Match`` and ``If-Range``; the type is the stored one (never sniffed).
- ``PUT /storage/o/{key}``: a single upload or one multipart part, streamed to a
  temporary file with the size limit enforced while streaming.
- ``POST /storage/upload``: a browser form upload (presigned POST), streamed likewise.
- ``OPTIONS``: CORS preflight. Signed URLs are capabilities (no cookies involved), so
  any origin may use them; the signature, not the origin, is what authorises.

Every refusal uses the shared JSON error format with a stable code: ``signature_invalid``,
``url_expired``, ``url_method_mismatch``, ``content_type_mismatch``,
``content_length_mismatch`` (403); ``object_not_found``, ``upload_not_found`` (404);
``upload_closed`` (409, a sealed key); ``payload_too_large`` (413);
``range_not_satisfiable`` (416); ``invalid_key``,
``entity_too_small``, ``incomplete_body``, ``invalid_form`` (400).

One concern per module: :mod:`.signed` (which store, which grant, is it authorised,
the refusals), :mod:`.ranges` (``Range``, ``If-Range``, ``If-None-Match``), :mod:`.form`
(the streaming form-POST parser), :mod:`.routes` (the router and its handlers).
"""
