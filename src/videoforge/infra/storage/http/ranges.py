"""Conditional and partial GETs: one ``bytes=`` range (RFC 9110), ``If-Range`` and
``If-None-Match`` against the object's ETag and modification time."""

from __future__ import annotations

import re
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import ClassVar

from videoforge.infra.errors import AppError
from videoforge.infra.storage.http.signed import error

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class RangeNotSatisfiable(AppError):
    status_code: ClassVar[int] = 416
    code = "range_not_satisfiable"


def quoted(etag: str | None) -> str | None:
    return f'"{etag}"' if etag else None


def etag_in(header: str, etag: str) -> bool:
    candidates = {c.strip().removeprefix("W/") for c in header.split(",")}
    return "*" in candidates or etag in candidates


def if_range_allows(header: str | None, etag: str | None, modified: datetime | None) -> bool:
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
    unsatisfiable = error(
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
