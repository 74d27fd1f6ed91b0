"""What every storage route checks first: that this app serves a local store, that the
URL's grant is well formed, signed, unexpired and for this method, and the refusals
(all with CORS headers, or a browser could not read why it was refused)."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import Request

from videoforge.infra.errors import (
    AppError,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
)
from videoforge.infra.storage.base import InvalidKey, validate_key
from videoforge.infra.storage.local.store import LocalStorage
from videoforge.infra.storage.signing import Grant, Op

_EXPOSED = "ETag, Content-Length, Content-Range, Accept-Ranges, Content-Disposition"
CORS_HEADERS = {"Access-Control-Allow-Origin": "*", "Access-Control-Expose-Headers": _EXPOSED}


def error(cls: type[AppError], message: str, code: str | None = None) -> AppError:
    # Errors carry the CORS headers too, or a browser could not read why it was refused.
    return cls(message, code=code, headers={**CORS_HEADERS, "Cache-Control": "no-store"})


def store_of(request: Request) -> LocalStorage:
    infra = getattr(request.app.state, "infra", None)
    storage = getattr(infra, "storage", None)
    if not isinstance(storage, LocalStorage):
        raise error(NotFound, "This server does not serve storage URLs.")
    return storage


def valid_key(key: str) -> str:
    # Checked before anything else: a key no store could hold is a malformed request
    # (400), whatever the signature says, and must never reach the file system.
    try:
        return validate_key(key)
    except InvalidKey as exc:
        raise error(BadRequest, f"The object key is not valid: {exc}.", "invalid_key") from None


def grant_from_query(key: str, query: Mapping[str, str]) -> tuple[Grant, str]:
    valid_key(key)
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
        raise error(Forbidden, "The URL is not a valid signed URL.", "signature_invalid") from None


def authorize(store: LocalStorage, grant: Grant, signature: str, *ops: Op) -> None:
    """Signature first (nothing else is trusted before it), then expiry, then the method."""
    if not store.signer.verify(grant, signature):
        raise error(Forbidden, "The URL's signature is not valid.", "signature_invalid")
    if grant.expires < store.now():
        raise error(Forbidden, "The URL has expired.", "url_expired")
    if grant.op not in ops:
        raise error(Forbidden, "The URL was not signed for this method.", "url_method_mismatch")


def declared_length(request: Request) -> int | None:
    raw = request.headers.get("content-length")
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise error(BadRequest, "Content-Length is not a number.", "bad_request") from None
    if value < 0:
        raise error(BadRequest, "Content-Length is negative.", "bad_request")
    return value


def closed() -> AppError:
    return error(
        Conflict,
        "This upload was already confirmed; its URLs can no longer write.",
        "upload_closed",
    )


def too_large(limit: int) -> AppError:
    return error(PayloadTooLarge, f"The upload is larger than {limit} bytes.")
