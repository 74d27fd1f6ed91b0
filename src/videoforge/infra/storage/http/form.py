"""The streaming ``multipart/form-data`` parser of presigned form POSTs: the signed
policy fields are checked before one byte of the file is accepted."""

from __future__ import annotations

from python_multipart.multipart import MultipartParser, parse_options_header

from videoforge.infra.errors import BadRequest, Forbidden, PayloadTooLarge
from videoforge.infra.storage.http.signed import (
    authorize,
    closed,
    error,
    too_large,
    valid_key,
)
from videoforge.infra.storage.local.presign import (
    POST_EXPIRES_FIELD,
    POST_MAX_FIELD,
    POST_SIGNATURE_FIELD,
)
from videoforge.infra.storage.local.store import LocalStorage
from videoforge.infra.storage.signing import Grant, Op

MAX_FORM_FIELDS_BYTES = 64 * 1024


class FormUpload:
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
            raise error(BadRequest, "A form part has no name.", "invalid_form")
        self._name = raw_name.decode("utf-8", "replace")
        if self._name == "file":
            self._in_file = True
            self.grant = self._authorize()

    def _authorize(self) -> Grant:
        fields = self.fields
        if "key" in fields:
            valid_key(fields["key"])
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
            raise error(
                Forbidden,
                "The form's signed policy fields are missing (they must come before the file).",
                "signature_invalid",
            ) from None
        authorize(self.store, grant, signature, Op.POST)
        if self.store.is_sealed(grant.key):
            raise closed()
        self.limit = max_bytes
        return grant

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        size = end - start
        if self._in_file:
            if self.file_size + size > self.limit:
                raise too_large(self.limit)
            self.file_size += size
            self.out += data[start:end]
            return
        self._field_bytes += size
        if self._field_bytes > MAX_FORM_FIELDS_BYTES:
            raise error(PayloadTooLarge, "The form fields are too large.")
        self._value += data[start:end]

    def _part_end(self) -> None:
        if self._in_file:
            self.file_done = True
        elif self._name is not None:
            # Field names are case-insensitive, as in S3's POST policy.
            self.fields[self._name.lower()] = self._value.decode("utf-8", "replace")
