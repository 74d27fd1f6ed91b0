"""The storage router: signed GET/HEAD (with ranges), PUT (objects and parts), form POST
and CORS preflights; see the package's docstring for what each answers."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from email.utils import format_datetime
from typing import IO

import anyio.to_thread
from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from python_multipart.multipart import parse_options_header
from starlette.background import BackgroundTask

from videoforge.infra.errors import BadRequest, Forbidden, NotFound, ServiceUnavailable
from videoforge.infra.openapi import error_responses
from videoforge.infra.storage.base import (
    InvalidKey,
    ObjectNotFound,
    StorageError,
    content_disposition,
)
from videoforge.infra.storage.http.form import MAX_FORM_FIELDS_BYTES, FormUpload
from videoforge.infra.storage.http.ranges import etag_in, if_range_allows, parse_range, quoted
from videoforge.infra.storage.http.signed import (
    CORS_HEADERS,
    authorize,
    closed,
    declared_length,
    error,
    grant_from_query,
    store_of,
    too_large,
)
from videoforge.infra.storage.local.files import KeySealed, PendingWrite
from videoforge.infra.storage.local.presign import ROUTE_PREFIX
from videoforge.infra.storage.signing import Op

router = APIRouter(prefix=ROUTE_PREFIX, tags=["storage"], responses=error_responses())

_READ_CHUNK = 256 * 1024
_FLUSH_BYTES = 1024 * 1024
_MAX_CACHE_SECONDS = 24 * 3600


async def _stream(handle: IO[bytes], start: int, length: int) -> AsyncIterator[bytes]:
    try:
        await anyio.to_thread.run_sync(handle.seek, start)
        remaining = length
        while remaining > 0:
            chunk = await anyio.to_thread.run_sync(handle.read, min(_READ_CHUNK, remaining))
            if not chunk:
                return
            remaining -= len(chunk)
            yield chunk
    finally:
        handle.close()


@router.api_route("/o/{key:path}", methods=["GET", "HEAD"], include_in_schema=False)
async def get_object(request: Request, key: str) -> Response:
    """Serve an object through a signed GET URL (``HEAD`` too), with byte ranges.

    The content type is the one stored with the object (or the signed override), sent
    with ``nosniff``; a URL signed with a download name answers ``attachment``. Caches
    may keep the response privately for no longer than the URL lives.
    """
    store = store_of(request)
    grant, signature = grant_from_query(key, request.query_params)
    authorize(store, grant, signature, Op.GET)
    try:
        handle, info = await anyio.to_thread.run_sync(store.open_object, key)
    except (ObjectNotFound, InvalidKey):
        raise error(NotFound, "No such object.", "object_not_found") from None

    etag = quoted(info.etag)
    lifetime = max(0, min(grant.expires - store.now(), _MAX_CACHE_SECONDS))
    headers = {
        **CORS_HEADERS,
        "Accept-Ranges": "bytes",
        "Content-Type": grant.response_content_type
        or info.content_type
        or "application/octet-stream",
        "X-Content-Type-Options": "nosniff",
        # Objects are user content served from the app's own origin (embedded mode):
        # even if one were opened as a document, it gets no script and no same-origin.
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cache-Control": f"private, max-age={lifetime}",
    }
    if etag:
        headers["ETag"] = etag
    if info.last_modified is not None:
        headers["Last-Modified"] = format_datetime(info.last_modified, usegmt=True)
    if grant.download_name is not None:
        headers["Content-Disposition"] = content_disposition(grant.download_name)

    try:
        if_none_match = request.headers.get("if-none-match")
        if etag and if_none_match and etag_in(if_none_match, etag):
            handle.close()
            headers.pop("Content-Type")
            return Response(status_code=304, headers=headers)

        status, start, length = 200, 0, info.size
        range_header = request.headers.get("range")
        if range_header and if_range_allows(
            request.headers.get("if-range"), etag, info.last_modified
        ):
            span = parse_range(range_header, info.size)
            if span is not None:
                status, start, length = 206, span[0], span[1] - span[0] + 1
                headers["Content-Range"] = f"bytes {span[0]}-{span[1]}/{info.size}"
    except BaseException:
        handle.close()
        raise
    headers["Content-Length"] = str(length)

    if request.method == "HEAD":
        handle.close()
        return Response(status_code=status, headers=headers)
    return StreamingResponse(
        _stream(handle, start, length),
        status_code=status,
        headers=headers,
        # Closes the file even if the body is never iterated (client gone before start).
        background=BackgroundTask(handle.close),
    )


async def _receive_into(request: Request, pending: PendingWrite, limit: int) -> None:
    """Stream the body into ``pending``; refuse as soon as it passes ``limit``."""
    buffer = bytearray()
    async for chunk in request.stream():
        if pending.size + len(buffer) + len(chunk) > limit:
            raise too_large(limit)
        buffer += chunk
        if len(buffer) >= _FLUSH_BYTES:
            await anyio.to_thread.run_sync(pending.write, bytes(buffer))
            buffer.clear()
    if buffer:
        await anyio.to_thread.run_sync(pending.write, bytes(buffer))


@contextlib.asynccontextmanager
async def _discarded_on_failure(pending: PendingWrite) -> AsyncIterator[None]:
    """Whatever goes wrong while receiving or committing, nothing received is kept; a
    sealed key answers 409 and a store that cannot write 503."""
    try:
        yield
    except KeySealed:
        await anyio.to_thread.run_sync(pending.discard)
        raise closed() from None
    except (StorageError, OSError) as exc:
        await anyio.to_thread.run_sync(pending.discard)
        raise error(ServiceUnavailable, f"The store could not write: {exc}") from exc
    except BaseException:
        await anyio.to_thread.run_sync(pending.discard)
        raise


@router.put("/o/{key:path}", include_in_schema=False)
async def put_object(request: Request, key: str) -> Response:
    """Upload through a signed PUT URL: a whole object, or one part of a multipart upload.

    The ``Content-Type`` must be the signed one (single uploads); the body may not pass
    the signed exact length (or the store's limit), checked while it streams — the
    request is refused with 413 the moment it does and nothing is kept. Answers the
    stored bytes' ``ETag``.
    """
    store = store_of(request)
    grant, signature = grant_from_query(key, request.query_params)
    authorize(store, grant, signature, Op.PUT, Op.PART)

    exact: int | None = None
    upload_id, part_number = grant.upload_id, grant.part_number
    if grant.op is Op.PUT:
        sent_type = (request.headers.get("content-type") or "").strip()
        if sent_type != grant.content_type:
            raise error(
                Forbidden,
                "The Content-Type is not the one the URL was signed for.",
                "content_type_mismatch",
            )
        exact = grant.length
    else:
        if upload_id is None or part_number is None:
            raise error(Forbidden, "The part URL is incomplete.", "signature_invalid")
        exists = await anyio.to_thread.run_sync(store.upload_exists, key, upload_id)
        if not exists:
            raise error(NotFound, "No such multipart upload.", "upload_not_found")
        exact = grant.length
    limit = exact if exact is not None else store.max_put_bytes

    declared = declared_length(request)
    if exact is not None and declared is not None and declared != exact:
        raise error(
            Forbidden,
            "The Content-Length is not the one the URL was signed for.",
            "content_length_mismatch",
        )
    if declared is not None and declared > limit:
        raise too_large(limit)
    if grant.op is Op.PUT and await anyio.to_thread.run_sync(store.is_sealed, key):
        raise closed()

    pending = await anyio.to_thread.run_sync(store.new_pending)
    async with _discarded_on_failure(pending):
        try:
            await _receive_into(request, pending, limit)
            if exact is not None and pending.size != exact:
                raise error(
                    BadRequest, "The body is shorter than its signed length.", "incomplete_body"
                )
            if grant.op is Op.PUT:
                info = await anyio.to_thread.run_sync(
                    lambda: store.commit_pending(
                        key, pending, content_type=grant.content_type, unless_sealed=True
                    )
                )
                etag = info.etag
            else:
                assert upload_id is not None
                assert part_number is not None
                etag = await anyio.to_thread.run_sync(
                    store.commit_part, key, upload_id, part_number, pending
                )
        except ObjectNotFound:
            raise error(NotFound, "No such multipart upload.", "upload_not_found") from None
    return Response(status_code=200, headers={**CORS_HEADERS, "ETag": f'"{etag}"'})


@router.post("/upload", include_in_schema=False)
async def post_object(request: Request) -> Response:
    """Browser form upload through a presigned POST (signed fields first, ``file`` last).

    The key, content type, size limit and expiry come from the signed fields; the file
    is streamed to disk and refused with 413 the moment it passes the limit. Answers
    204 with the object's ``ETag``.
    """
    store = store_of(request)
    mime, options = parse_options_header(request.headers.get("content-type"))
    boundary = options.get(b"boundary")
    if mime != b"multipart/form-data" or not boundary:
        raise error(BadRequest, "Expected a multipart/form-data body.", "invalid_form")

    form = FormUpload(store, boundary)
    declared = declared_length(request)
    pending = await anyio.to_thread.run_sync(store.new_pending)
    checked_declared = False
    async with _discarded_on_failure(pending):
        async for chunk in request.stream():
            form.feed(chunk)
            if form.grant is not None and not checked_declared:
                checked_declared = True
                # Refuse at once when the declared body cannot fit (fields + slack).
                slack = MAX_FORM_FIELDS_BYTES + 4096
                if declared is not None and declared > form.limit + slack:
                    raise too_large(form.limit)
            if form.out:
                await anyio.to_thread.run_sync(pending.write, bytes(form.out))
                form.out.clear()
            if form.file_done:
                break
        if not form.file_done or form.grant is None:
            raise error(BadRequest, "The form has no complete 'file' part.", "invalid_form")
        if pending.size == 0:
            raise error(BadRequest, "The file is empty.", "entity_too_small")
        grant = form.grant
        info = await anyio.to_thread.run_sync(
            lambda: store.commit_pending(
                grant.key, pending, content_type=grant.content_type, unless_sealed=True
            )
        )
    return Response(status_code=204, headers={**CORS_HEADERS, "ETag": f'"{info.etag}"'})


def _preflight(request: Request) -> Response:
    requested = request.headers.get("access-control-request-headers")
    return Response(
        status_code=204,
        headers={
            **CORS_HEADERS,
            "Access-Control-Allow-Methods": "GET, HEAD, PUT, POST, OPTIONS",
            "Access-Control-Allow-Headers": requested
            or "Content-Type, Range, If-Range, If-None-Match",
            "Access-Control-Max-Age": "600",
        },
    )


@router.options("/o/{key:path}", include_in_schema=False)
async def preflight_object(request: Request, key: str) -> Response:
    """CORS preflight for object GET/HEAD/PUT (signed URLs work from any origin)."""
    return _preflight(request)


@router.options("/upload", include_in_schema=False)
async def preflight_upload(request: Request) -> Response:
    """CORS preflight for presigned form POSTs."""
    return _preflight(request)
