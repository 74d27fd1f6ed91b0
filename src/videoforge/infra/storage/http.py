"""HTTP endpoints for the local store's signed URLs (``/storage/...``).

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
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import IO, ClassVar

import anyio.to_thread
from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.background import BackgroundTask

from videoforge.infra.errors import (
    AppError,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
)
from videoforge.infra.openapi import error_responses
from videoforge.infra.storage.base import (
    InvalidKey,
    ObjectNotFound,
    StorageError,
    content_disposition,
    validate_key,
)
from videoforge.infra.storage.local import (
    POST_EXPIRES_FIELD,
    POST_MAX_FIELD,
    POST_SIGNATURE_FIELD,
    KeySealed,
    LocalStorage,
    PendingWrite,
)
from videoforge.infra.storage.signing import Grant, Op

router = APIRouter(prefix="/storage", tags=["storage"], responses=error_responses())

_READ_CHUNK = 256 * 1024
_FLUSH_BYTES = 1024 * 1024
_MAX_FORM_FIELDS_BYTES = 64 * 1024
_MAX_CACHE_SECONDS = 24 * 3600
_EXPOSED = "ETag, Content-Length, Content-Range, Accept-Ranges, Content-Disposition"
CORS_HEADERS = {"Access-Control-Allow-Origin": "*", "Access-Control-Expose-Headers": _EXPOSED}
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class RangeNotSatisfiable(AppError):
    status_code: ClassVar[int] = 416
    code = "range_not_satisfiable"


def _error(cls: type[AppError], message: str, code: str | None = None) -> AppError:
    # Errors carry the CORS headers too, or a browser could not read why it was refused.
    return cls(message, code=code, headers={**CORS_HEADERS, "Cache-Control": "no-store"})


def _store(request: Request) -> LocalStorage:
    infra = getattr(request.app.state, "infra", None)
    storage = getattr(infra, "storage", None)
    if not isinstance(storage, LocalStorage):
        raise _error(NotFound, "This server does not serve storage URLs.")
    return storage


def _valid_key(key: str) -> str:
    # Checked before anything else: a key no store could hold is a malformed request
    # (400), whatever the signature says, and must never reach the file system.
    try:
        return validate_key(key)
    except InvalidKey as exc:
        raise _error(BadRequest, f"The object key is not valid: {exc}.", "invalid_key") from None


def _grant_from_query(key: str, query: Mapping[str, str]) -> tuple[Grant, str]:
    _valid_key(key)
    try:
        grant = Grant(
            op=Op(query["op"]),
            key=key,
            expires=int(query["exp"]),
            content_type=query.get("ct"),
            length=int(query["len"]) if "len" in query else None,
            download_name=query.get("dn"),
            response_content_type=query.get("rct"),
            upload_id=query.get("uid"),
            part_number=int(query["pn"]) if "pn" in query else None,
        )
        return grant, query["sig"]
    except (KeyError, ValueError):
        raise _error(Forbidden, "The URL is not a valid signed URL.", "signature_invalid") from None


def _authorize(store: LocalStorage, grant: Grant, signature: str, *ops: Op) -> None:
    """Signature first (nothing else is trusted before it), then expiry, then the method."""
    if not store.signer.verify(grant, signature):
        raise _error(Forbidden, "The URL's signature is not valid.", "signature_invalid")
    if grant.expires < store.now():
        raise _error(Forbidden, "The URL has expired.", "url_expired")
    if grant.op not in ops:
        raise _error(Forbidden, "The URL was not signed for this method.", "url_method_mismatch")


def _quoted(etag: str | None) -> str | None:
    return f'"{etag}"' if etag else None


def _etag_in(header: str, etag: str) -> bool:
    candidates = {c.strip().removeprefix("W/") for c in header.split(",")}
    return "*" in candidates or etag in candidates


def _if_range_allows(header: str | None, etag: str | None, modified: datetime | None) -> bool:
    """``If-Range``: honour the Range only if the representation is unchanged."""
    if header is None:
        return True
    header = header.strip()
    if header.startswith('"') or header.startswith("W/"):
        return etag is not None and header == etag
    try:
        since = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return False
    return modified is not None and int(modified.timestamp()) <= int(since.timestamp())


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """One ``bytes=`` range as inclusive (first, last), ``None`` to send everything.

    Malformed or multi-range headers are ignored (RFC 9110 lets a server do that);
    a well-formed range beyond the end raises :class:`RangeNotSatisfiable`.
    """
    match = _RANGE.match(header.strip())
    if match is None:
        return None
    first_text, last_text = match.groups()
    unsatisfiable = _error(
        RangeNotSatisfiable, f"The object has {size} bytes.", "range_not_satisfiable"
    )
    unsatisfiable.headers["Content-Range"] = f"bytes */{size}"
    if first_text == "":
        if last_text == "":
            return None
        suffix = int(last_text)
        if suffix == 0 or size == 0:
            raise unsatisfiable
        return max(0, size - suffix), size - 1
    first = int(first_text)
    if last_text and int(last_text) < first:
        return None  # syntactically invalid: ignored
    if first >= size:
        raise unsatisfiable
    last = int(last_text) if last_text else size - 1
    return first, min(last, size - 1)


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
    store = _store(request)
    grant, signature = _grant_from_query(key, request.query_params)
    _authorize(store, grant, signature, Op.GET)
    try:
        handle, info = await anyio.to_thread.run_sync(store.open_object, key)
    except (ObjectNotFound, InvalidKey):
        raise _error(NotFound, "No such object.", "object_not_found") from None

    etag = _quoted(info.etag)
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
        if etag and if_none_match and _etag_in(if_none_match, etag):
            handle.close()
            headers.pop("Content-Type")
            return Response(status_code=304, headers=headers)

        status, start, length = 200, 0, info.size
        range_header = request.headers.get("range")
        if range_header and _if_range_allows(
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


def _declared_length(request: Request) -> int | None:
    raw = request.headers.get("content-length")
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise _error(BadRequest, "Content-Length is not a number.", "bad_request") from None
    if value < 0:
        raise _error(BadRequest, "Content-Length is negative.", "bad_request")
    return value


def _closed() -> AppError:
    return _error(
        Conflict,
        "This upload was already confirmed; its URLs can no longer write.",
        "upload_closed",
    )


def _too_large(limit: int) -> AppError:
    return _error(PayloadTooLarge, f"The upload is larger than {limit} bytes.")


async def _receive_into(request: Request, pending: PendingWrite, limit: int) -> None:
    """Stream the body into ``pending``; refuse as soon as it passes ``limit``."""
    buffer = bytearray()
    async for chunk in request.stream():
        if pending.size + len(buffer) + len(chunk) > limit:
            raise _too_large(limit)
        buffer += chunk
        if len(buffer) >= _FLUSH_BYTES:
            await anyio.to_thread.run_sync(pending.write, bytes(buffer))
            buffer.clear()
    if buffer:
        await anyio.to_thread.run_sync(pending.write, bytes(buffer))


@router.put("/o/{key:path}", include_in_schema=False)
async def put_object(request: Request, key: str) -> Response:
    """Upload through a signed PUT URL: a whole object, or one part of a multipart upload.

    The ``Content-Type`` must be the signed one (single uploads); the body may not pass
    the signed exact length (or the store's limit), checked while it streams — the
    request is refused with 413 the moment it does and nothing is kept. Answers the
    stored bytes' ``ETag``.
    """
    store = _store(request)
    grant, signature = _grant_from_query(key, request.query_params)
    _authorize(store, grant, signature, Op.PUT, Op.PART)

    exact: int | None = None
    upload_id, part_number = grant.upload_id, grant.part_number
    if grant.op is Op.PUT:
        sent_type = (request.headers.get("content-type") or "").strip()
        if sent_type != grant.content_type:
            raise _error(
                Forbidden,
                "The Content-Type is not the one the URL was signed for.",
                "content_type_mismatch",
            )
        exact = grant.length
    else:
        if upload_id is None or part_number is None:
            raise _error(Forbidden, "The part URL is incomplete.", "signature_invalid")
        exists = await anyio.to_thread.run_sync(store.upload_exists, key, upload_id)
        if not exists:
            raise _error(NotFound, "No such multipart upload.", "upload_not_found")
        exact = grant.length
    limit = exact if exact is not None else store.max_put_bytes

    declared = _declared_length(request)
    if exact is not None and declared is not None and declared != exact:
        raise _error(
            Forbidden,
            "The Content-Length is not the one the URL was signed for.",
            "content_length_mismatch",
        )
    if declared is not None and declared > limit:
        raise _too_large(limit)
    if grant.op is Op.PUT and await anyio.to_thread.run_sync(store.is_sealed, key):
        raise _closed()

    pending = await anyio.to_thread.run_sync(store.new_pending)
    try:
        await _receive_into(request, pending, limit)
        if exact is not None and pending.size != exact:
            raise _error(
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
        await anyio.to_thread.run_sync(pending.discard)
        raise _error(NotFound, "No such multipart upload.", "upload_not_found") from None
    except KeySealed:
        await anyio.to_thread.run_sync(pending.discard)
        raise _closed() from None
    except (StorageError, OSError) as exc:
        await anyio.to_thread.run_sync(pending.discard)
        raise _error(ServiceUnavailable, f"The store could not write: {exc}") from exc
    except BaseException:
        await anyio.to_thread.run_sync(pending.discard)
        raise
    return Response(status_code=200, headers={**CORS_HEADERS, "ETag": f'"{etag}"'})


class _FormUpload:
    """Streaming ``multipart/form-data`` parser for a presigned POST.

    The signed fields come first; they are verified when the ``file`` part's headers
    end, before a single byte of the file is accepted. File bytes are collected in
    ``out`` for the caller to write; the limit is enforced per chunk.
    """

    def __init__(self, store: LocalStorage, boundary: bytes) -> None:
        self.store = store
        self.fields: dict[str, str] = {}
        self.grant: Grant | None = None
        self.limit = 0
        self.out = bytearray()
        self.file_size = 0
        self.file_done = False
        self._field_bytes = 0
        self._headers: dict[str, str] = {}
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._name: str | None = None
        self._value = bytearray()
        self._in_file = False
        self.parser = MultipartParser(
            boundary,
            callbacks={
                "on_part_begin": self._part_begin,
                "on_header_field": self._header_field_data,
                "on_header_value": self._header_value_data,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._part_data,
                "on_part_end": self._part_end,
            },
        )

    def feed(self, chunk: bytes) -> None:
        if not self.file_done:
            self.parser.write(chunk)

    def _part_begin(self) -> None:
        self._headers = {}
        self._name = None
        self._value = bytearray()
        self._in_file = False

    def _header_field_data(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def _header_value_data(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        name = self._header_field.decode("latin-1").lower()
        self._headers[name] = self._header_value.decode("latin-1")
        self._header_field = bytearray()
        self._header_value = bytearray()

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get("content-disposition", ""))
        raw_name = options.get(b"name")
        if raw_name is None:
            raise _error(BadRequest, "A form part has no name.", "invalid_form")
        self._name = raw_name.decode("utf-8", "replace")
        if self._name == "file":
            self._in_file = True
            self.grant = self._authorize()

    def _authorize(self) -> Grant:
        fields = self.fields
        if "key" in fields:
            _valid_key(fields["key"])
        try:
            max_bytes = int(fields[POST_MAX_FIELD])
            grant = Grant(
                op=Op.POST,
                key=fields["key"],
                expires=int(fields[POST_EXPIRES_FIELD]),
                content_type=fields["content-type"],
                length=max_bytes,
            )
            signature = fields[POST_SIGNATURE_FIELD]
        except (KeyError, ValueError):
            raise _error(
                Forbidden,
                "The form's signed policy fields are missing (they must come before the file).",
                "signature_invalid",
            ) from None
        _authorize(self.store, grant, signature, Op.POST)
        if self.store.is_sealed(grant.key):
            raise _closed()
        self.limit = max_bytes
        return grant

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        size = end - start
        if self._in_file:
            if self.file_size + size > self.limit:
                raise _too_large(self.limit)
            self.file_size += size
            self.out += data[start:end]
            return
        self._field_bytes += size
        if self._field_bytes > _MAX_FORM_FIELDS_BYTES:
            raise _error(PayloadTooLarge, "The form fields are too large.")
        self._value += data[start:end]

    def _part_end(self) -> None:
        if self._in_file:
            self.file_done = True
        elif self._name is not None:
            # Field names are case-insensitive, as in S3's POST policy.
            self.fields[self._name.lower()] = self._value.decode("utf-8", "replace")


@router.post("/upload", include_in_schema=False)
async def post_object(request: Request) -> Response:
    """Browser form upload through a presigned POST (signed fields first, ``file`` last).

    The key, content type, size limit and expiry come from the signed fields; the file
    is streamed to disk and refused with 413 the moment it passes the limit. Answers
    204 with the object's ``ETag``.
    """
    store = _store(request)
    mime, options = parse_options_header(request.headers.get("content-type"))
    boundary = options.get(b"boundary")
    if mime != b"multipart/form-data" or not boundary:
        raise _error(BadRequest, "Expected a multipart/form-data body.", "invalid_form")

    form = _FormUpload(store, boundary)
    declared = _declared_length(request)
    pending = await anyio.to_thread.run_sync(store.new_pending)
    checked_declared = False
    try:
        async for chunk in request.stream():
            form.feed(chunk)
            if form.grant is not None and not checked_declared:
                checked_declared = True
                # Refuse at once when the declared body cannot fit (fields + slack).
                slack = _MAX_FORM_FIELDS_BYTES + 4096
                if declared is not None and declared > form.limit + slack:
                    raise _too_large(form.limit)
            if form.out:
                await anyio.to_thread.run_sync(pending.write, bytes(form.out))
                form.out.clear()
            if form.file_done:
                break
        if not form.file_done or form.grant is None:
            raise _error(BadRequest, "The form has no complete 'file' part.", "invalid_form")
        if pending.size == 0:
            raise _error(BadRequest, "The file is empty.", "entity_too_small")
        grant = form.grant
        info = await anyio.to_thread.run_sync(
            lambda: store.commit_pending(
                grant.key, pending, content_type=grant.content_type, unless_sealed=True
            )
        )
    except KeySealed:
        await anyio.to_thread.run_sync(pending.discard)
        raise _closed() from None
    except (StorageError, OSError) as exc:
        await anyio.to_thread.run_sync(pending.discard)
        raise _error(ServiceUnavailable, f"The store could not write: {exc}") from exc
    except BaseException:
        await anyio.to_thread.run_sync(pending.discard)
        raise
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
