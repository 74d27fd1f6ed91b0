"""The embedded object store: a directory, with HMAC-signed expiring URLs.

Layout under the root (``settings.storage_dir``)::

    <seg>/<seg>/<last>~o      the object's bytes
    <seg>/<seg>/<last>~m      its metadata (JSON: key, content type, user metadata, ETag);
                              alone, with ``sealed``, a key closed to signed writes
    ~tmp/                     in-flight writes (renamed into place when complete)
    ~multipart/<upload id>/   multipart uploads in progress (upload.json + one file per part)

Every key segment is percent-encoded to ``[A-Za-z0-9._%-]`` (over-long ones are
shortened to a prefix, ``~h`` and a hash), so an encoded segment never starts with
``~`` and never ends in ``~o``/``~m``: objects, their metadata, directories and the
store's own ``~`` entries can never collide, ``a`` and ``a/b`` can both exist (as in
S3), and no key can name a path outside the root. Keys are validated first anyway
(:func:`~.base.validate_key`).

Writes go to a temporary file that is fsynced and renamed over the target, so a reader
sees the old object or the new one, never a partial one. The metadata and data renames
happen under an exclusive ``flock`` of the object's directory and readers take it
shared, so bytes and metadata always come from the same write, even across processes.

URLs are ``{base_url}/storage/...`` and are served by :mod:`.http`.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import string
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote, urlencode

import anyio.to_thread

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

from videoforge.infra.secrets import storage_signing_key
from videoforge.infra.storage.base import (
    MIN_PART_SIZE,
    CompletedPart,
    InvalidRange,
    InvalidUpload,
    ObjectChanged,
    ObjectInfo,
    ObjectNotFound,
    PresignedPost,
    StorageError,
    check_range,
    normalize_metadata,
    strip_etag,
    validate_content_type,
    validate_expires,
    validate_key,
    validate_part_number,
    validate_prefix,
)
from videoforge.infra.storage.signing import Grant, Op, UrlSigner
from videoforge.settings import Settings

DATA_SUFFIX = "~o"
META_SUFFIX = "~m"
TMP_DIR = "~tmp"
MULTIPART_DIR = "~multipart"
ROUTE_PREFIX = "/storage"
OBJECT_ROUTE = ROUTE_PREFIX + "/o/"
POST_ROUTE = ROUTE_PREFIX + "/upload"
#: Form field names of a presigned POST (besides ``key`` and ``Content-Type``).
POST_EXPIRES_FIELD = "x-vf-expires"
POST_MAX_FIELD = "x-vf-max-bytes"
POST_SIGNATURE_FIELD = "x-vf-signature"

_SAFE_CHARS = frozenset(string.ascii_letters + string.digits + "-_.")
_MAX_NAME = 200  # well under NAME_MAX (255) once the ~o / ~m suffix is added
_UPLOAD_ID = re.compile(r"^[A-Za-z0-9_-]{20,64}$")
_CHUNK = 1024 * 1024
_DEFAULT_MAX_PUT = 5 * 1024**3  # S3's single-PUT limit


def _encode_segment(segment: str) -> str:
    encoded = "".join(
        ch if ch in _SAFE_CHARS else "".join(f"%{b:02X}" for b in ch.encode("utf-8"))
        for ch in segment
    )
    if len(encoded) > _MAX_NAME:
        # Still unique (the hash is of the whole segment) and still readable at a glance.
        digest = hashlib.sha256(segment.encode("utf-8")).hexdigest()[:40]
        encoded = f"{encoded[:120]}~h{digest}"
    return encoded


@contextlib.contextmanager
def _dir_lock(directory: Path, *, exclusive: bool, required: bool = False) -> Iterator[None]:
    """``flock`` on a directory: writers (exclusive) swap an object's metadata and data
    together; readers (shared) see both from the same write. Works across the embedded
    app and its worker processes. A missing directory holds nothing to protect, so
    only a writer about to rename into it (``required``) treats that as an error."""
    if fcntl is None:  # pragma: no cover - not POSIX: renames alone
        yield
        return
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except (FileNotFoundError, NotADirectoryError):
        if required:
            raise
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # releases the lock


class KeySealed(StorageError):
    """A signed URL tried to write a key that :meth:`LocalStorage.seal` closed."""


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class PendingWrite:
    """A temporary file being filled; becomes an object or a part when committed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = 0
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._file: IO[bytes] | None = path.open("xb")

    def write(self, data: bytes) -> None:
        assert self._file is not None, "write after finish"
        self._file.write(data)
        self._md5.update(data)
        self.size += len(data)

    @property
    def md5(self) -> bytes:
        return self._md5.digest()

    @property
    def etag(self) -> str:
        return self._md5.hexdigest()

    def finish(self) -> None:
        """Flush to disk: once renamed, the bytes must survive a crash."""
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None

    def discard(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self.path.unlink(missing_ok=True)


class LocalStorage:
    """:class:`~.base.Storage` on a local directory with its own signed URLs."""

    def __init__(
        self,
        root: Path,
        *,
        signing_key: bytes,
        base_url: str = "",
        max_put_bytes: int = _DEFAULT_MAX_PUT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.root = Path(os.path.abspath(root))
        self.signer = UrlSigner(signing_key)
        self.base_url = base_url.rstrip("/")
        #: Upper bound for a PUT (single object or part) whose URL carries no exact length.
        self.max_put_bytes = max_put_bytes
        self._clock = clock

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalStorage:
        """The embedded store in ``settings.storage_dir``, URLs under ``PUBLIC_URL``."""
        return cls(
            settings.storage_dir,
            signing_key=storage_signing_key(settings),
            base_url=settings.public_url or "",
            max_put_bytes=max(settings.upload_max_bytes, settings.upload_part_size),
        )

    def now(self) -> int:
        return int(self._clock())

    # ------------------------------------------------------------------ layout
    def object_paths(self, key: str) -> tuple[Path, Path]:
        """(data file, metadata file) for a key, after validating it."""
        segments = [_encode_segment(s) for s in validate_key(key).split("/")]
        parent = self.root.joinpath(*segments[:-1])
        data = parent / (segments[-1] + DATA_SUFFIX)
        meta = parent / (segments[-1] + META_SUFFIX)
        # The encoding makes escaping impossible; this is the belt to those braces.
        if not Path(os.path.normpath(data)).is_relative_to(self.root):
            raise StorageError("resolved object path escaped the storage root")
        return data, meta

    def _tmp_path(self) -> Path:
        tmp = self.root / TMP_DIR
        tmp.mkdir(parents=True, exist_ok=True)
        return tmp / f"{secrets.token_hex(12)}.part"

    def _upload_dir(self, upload_id: str) -> Path:
        if not _UPLOAD_ID.match(upload_id):
            raise ObjectNotFound(f"no such multipart upload: {upload_id!r}")
        return self.root / MULTIPART_DIR / upload_id

    # ------------------------------------------------------------ sync cores
    def new_pending(self) -> PendingWrite:
        """A fresh temporary file in the store (same file system, so renames are atomic)."""
        return PendingWrite(self._tmp_path())

    def commit_pending(
        self,
        key: str,
        pending: PendingWrite,
        *,
        content_type: str | None,
        metadata: dict[str, str] | None = None,
        etag: str | None = None,
        unless_sealed: bool = False,
    ) -> ObjectInfo:
        """Make ``pending`` the object ``key`` (atomically replacing any previous one).

        ``unless_sealed`` (writes through signed URLs): raise :class:`KeySealed` instead
        when the key was sealed, checked under the lock the rename takes.
        """
        data_path, meta_path = self.object_paths(key)
        pending.finish()
        user_metadata = normalize_metadata(metadata)
        final_etag = etag or pending.etag
        doc = {
            "key": key,
            "size": pending.size,
            "content_type": content_type,
            "metadata": user_metadata,
            "etag": final_etag,
        }
        meta_tmp = self._tmp_path()
        meta_tmp.write_text(json.dumps(doc), encoding="utf-8")
        try:
            self._install(meta_tmp, meta_path, pending.path, data_path, unless_sealed)
        finally:
            meta_tmp.unlink(missing_ok=True)
            pending.path.unlink(missing_ok=True)
        return ObjectInfo(
            key=key,
            size=pending.size,
            content_type=content_type,
            etag=final_etag,
            last_modified=_utc(time.time()),
            metadata=user_metadata,
        )

    def _install(
        self,
        meta_src: Path,
        meta_dst: Path,
        data_src: Path,
        data_dst: Path,
        unless_sealed: bool = False,
    ) -> None:
        """Rename metadata and data into place as one unit (under the directory's lock)."""
        parent = data_dst.parent
        for attempt in range(5):
            parent.mkdir(parents=True, exist_ok=True)
            try:
                with _dir_lock(parent, exclusive=True, required=True):
                    if unless_sealed and self._read_meta(meta_dst).get("sealed") is True:
                        raise KeySealed("the key is sealed")
                    os.replace(meta_src, meta_dst)
                    os.replace(data_src, data_dst)
                return
            except FileNotFoundError:
                # A concurrent delete pruned the (momentarily empty) directory between
                # our mkdir and the lock; make it again rather than fail the write.
                if attempt == 4 or not data_src.exists() or not meta_src.exists():
                    raise

    def _write(
        self,
        key: str,
        chunks: Iterable[bytes],
        content_type: str | None,
        metadata: dict[str, str] | None,
    ) -> None:
        validate_key(key)
        if content_type is not None:
            validate_content_type(content_type)
        normalize_metadata(metadata)
        pending = self.new_pending()
        try:
            for chunk in chunks:
                pending.write(chunk)
            self.commit_pending(key, pending, content_type=content_type, metadata=metadata)
        except BaseException:
            pending.discard()
            raise

    def _read_meta(self, meta_path: Path) -> dict[str, Any]:
        try:
            doc = json.loads(meta_path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return {}
        return doc if isinstance(doc, dict) else {}

    def _info(self, key: str, meta_path: Path, st: os.stat_result) -> ObjectInfo:
        doc = self._read_meta(meta_path)
        metadata = doc.get("metadata")
        return ObjectInfo(
            key=key,
            size=st.st_size,
            content_type=doc.get("content_type"),
            etag=doc.get("etag"),
            last_modified=_utc(st.st_mtime),
            metadata=dict(metadata) if isinstance(metadata, dict) else {},
        )

    def open_object(self, key: str) -> tuple[IO[bytes], ObjectInfo]:
        """Open ``key`` for reading; the handle stays valid if the key is replaced meanwhile."""
        data_path, meta_path = self.object_paths(key)
        with _dir_lock(data_path.parent, exclusive=False):
            try:
                handle = data_path.open("rb")
            except (FileNotFoundError, NotADirectoryError):
                raise ObjectNotFound(key) from None
            try:
                info = self._info(key, meta_path, os.fstat(handle.fileno()))
            except BaseException:
                handle.close()
                raise
        return handle, info

    def _head(self, key: str) -> ObjectInfo | None:
        data_path, meta_path = self.object_paths(key)
        with _dir_lock(data_path.parent, exclusive=False):
            try:
                st = data_path.stat()
            except (FileNotFoundError, NotADirectoryError):
                return None
            return self._info(key, meta_path, st)

    def _read_range(self, key: str, start: int | None, end: int | None) -> bytes:
        handle, info = self.open_object(key)
        with handle:
            if start is None and end is None:
                return handle.read()
            first = start or 0
            if first >= info.size:
                raise InvalidRange(f"range starts at {first}, object has {info.size} bytes")
            last = info.size - 1 if end is None else min(end, info.size - 1)
            handle.seek(first)
            return handle.read(last - first + 1)

    def _copy_out(self, key: str, path: Path) -> None:
        handle, _ = self.open_object(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.part")
        try:
            with handle, tmp.open("wb") as out:
                shutil.copyfileobj(handle, out, _CHUNK)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    def _copy(self, source: str, dest: str, if_match: str | None) -> None:
        source_path, _ = self.object_paths(source)
        dest_path, dest_meta = self.object_paths(dest)
        handle, info = self.open_object(source)
        with handle:
            if if_match is not None and info.etag != strip_etag(if_match):
                raise ObjectChanged(f"{source} no longer has ETag {if_match}")
            # Every write renames a new file over the path and never changes a data file
            # in place, so a hard link to the inode we opened is a true copy of these
            # bytes in O(1). If the path was replaced since we opened it, the link names
            # another inode: copy from the open handle instead.
            data_tmp = self._tmp_path()
            try:
                try:
                    os.link(source_path, data_tmp)
                    linked = os.stat(data_tmp).st_ino == os.fstat(handle.fileno()).st_ino
                except OSError:
                    linked = False
                if not linked:
                    data_tmp.unlink(missing_ok=True)
                    with data_tmp.open("xb") as out:
                        shutil.copyfileobj(handle, out, _CHUNK)
                        out.flush()
                        os.fsync(out.fileno())
                doc = {
                    "key": dest,
                    "size": info.size,
                    "content_type": info.content_type,
                    "metadata": info.metadata,
                    "etag": info.etag,
                }
                meta_tmp = self._tmp_path()
                meta_tmp.write_text(json.dumps(doc), encoding="utf-8")
                try:
                    self._install(meta_tmp, dest_meta, data_tmp, dest_path)
                finally:
                    meta_tmp.unlink(missing_ok=True)
            finally:
                data_tmp.unlink(missing_ok=True)

    def _seal(self, key: str) -> None:
        data_path, meta_path = self.object_paths(key)
        tombstone = self._tmp_path()
        tombstone.write_text(json.dumps({"key": key, "sealed": True}), encoding="utf-8")
        try:
            for attempt in range(5):
                data_path.parent.mkdir(parents=True, exist_ok=True)
                try:
                    with _dir_lock(data_path.parent, exclusive=True, required=True):
                        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                            data_path.unlink()
                        os.replace(tombstone, meta_path)
                    return
                except FileNotFoundError:
                    if attempt == 4:  # pruned by a concurrent delete each time
                        raise
        finally:
            tombstone.unlink(missing_ok=True)

    def is_sealed(self, key: str) -> bool:
        """Whether :meth:`seal` closed ``key`` (and nothing deleted it since)."""
        _, meta_path = self.object_paths(key)
        return self._read_meta(meta_path).get("sealed") is True

    def _delete(self, key: str) -> bool:
        data_path, meta_path = self.object_paths(key)
        existed = True
        with _dir_lock(data_path.parent, exclusive=True):
            try:
                data_path.unlink()
            except (FileNotFoundError, NotADirectoryError):
                existed = False
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                meta_path.unlink()
        self._prune(data_path.parent)
        return existed

    def _prune(self, directory: Path) -> None:
        # Remove now-empty parents so deleted prefixes leave no directory litter.
        while directory != self.root and directory.is_relative_to(self.root):
            try:
                directory.rmdir()
            except OSError:
                return
            directory = directory.parent

    def _list(self, prefix: str) -> builtins.list[ObjectInfo]:
        validate_prefix(prefix)
        segments = prefix.split("/")
        start = self.root.joinpath(*(_encode_segment(s) for s in segments[:-1]))
        root = str(self.root)
        found: builtins.list[ObjectInfo] = []
        for dirpath, dirnames, filenames in os.walk(start):
            if dirpath == root:
                dirnames[:] = [d for d in dirnames if not d.startswith("~")]
            with _dir_lock(Path(dirpath), exclusive=False):
                for name in filenames:
                    if not name.endswith(META_SUFFIX):
                        continue
                    meta_path = Path(dirpath, name)
                    key = self._read_meta(meta_path).get("key")
                    if not isinstance(key, str) or not key.startswith(prefix):
                        continue
                    data_path = Path(dirpath, name[: -len(META_SUFFIX)] + DATA_SUFFIX)
                    try:
                        st = data_path.stat()
                    except FileNotFoundError:
                        continue  # deleted since the directory was read
                    found.append(self._info(key, meta_path, st))
        found.sort(key=lambda info: info.key)
        return found

    def _delete_prefix(self, prefix: str) -> int:
        validate_prefix(prefix, allow_empty=False)
        return sum(1 for info in self._list(prefix) if self._delete(info.key))

    # ----------------------------------------------------------- multipart (sync)
    def _create_multipart(self, key: str, content_type: str) -> str:
        validate_key(key)
        validate_content_type(content_type)
        upload_id = secrets.token_urlsafe(24)
        directory = self._upload_dir(upload_id)
        directory.mkdir(parents=True)
        doc = {"key": key, "content_type": content_type, "initiated": time.time()}
        (directory / "upload.json").write_text(json.dumps(doc), encoding="utf-8")
        return upload_id

    def _load_upload(self, key: str, upload_id: str) -> tuple[Path, dict[str, Any]]:
        directory = self._upload_dir(upload_id)
        doc = self._read_meta(directory / "upload.json")
        if doc.get("key") != key:
            raise ObjectNotFound(f"no multipart upload {upload_id!r} for {key!r}")
        return directory, doc

    def upload_exists(self, key: str, upload_id: str) -> bool:
        try:
            self._load_upload(key, upload_id)
        except ObjectNotFound:
            return False
        return True

    def commit_part(self, key: str, upload_id: str, part_number: int, pending: PendingWrite) -> str:
        """Store ``pending`` as one part (replacing an earlier upload of it); its ETag."""
        validate_part_number(part_number)
        directory, _ = self._load_upload(key, upload_id)
        pending.finish()
        try:
            os.replace(pending.path, directory / f"{part_number:05d}")
        except FileNotFoundError:
            pending.discard()
            raise ObjectNotFound(f"multipart upload {upload_id!r} is gone") from None
        return pending.etag

    def _complete_multipart(
        self, key: str, upload_id: str, parts: builtins.list[CompletedPart]
    ) -> None:
        directory, doc = self._load_upload(key, upload_id)
        if not parts:
            raise InvalidUpload("a multipart upload needs at least one part")
        ordered = sorted(parts, key=lambda p: p.part_number)
        if len({p.part_number for p in ordered}) != len(ordered):
            raise InvalidUpload("a part number is listed twice")
        pending = self.new_pending()
        digests = b""
        try:
            for part in ordered:
                part_md5 = hashlib.md5(usedforsecurity=False)
                try:
                    source = (directory / f"{part.part_number:05d}").open("rb")
                except FileNotFoundError:
                    raise InvalidUpload(f"part {part.part_number} was not uploaded") from None
                with source:
                    # As on S3, only the last part may be smaller than 5 MiB, so a client
                    # that works here works there too.
                    size = os.fstat(source.fileno()).st_size
                    if part is not ordered[-1] and size < MIN_PART_SIZE:
                        raise InvalidUpload(f"part {part.part_number} is smaller than 5 MiB")
                    if part.size is not None and size != part.size:
                        raise InvalidUpload(
                            f"part {part.part_number} has {size} bytes, not {part.size}"
                        )
                    while chunk := source.read(_CHUNK):
                        part_md5.update(chunk)
                        pending.write(chunk)
                # The ETag the client saw is checked against the bytes actually stored.
                if part_md5.hexdigest() != strip_etag(part.etag):
                    raise InvalidUpload(f"part {part.part_number}: ETag does not match")
                digests += part_md5.digest()
            etag = f"{hashlib.md5(digests, usedforsecurity=False).hexdigest()}-{len(ordered)}"
            self.commit_pending(key, pending, content_type=doc.get("content_type"), etag=etag)
        except BaseException:
            pending.discard()
            raise
        shutil.rmtree(directory, ignore_errors=True)

    def _list_multipart(self, prefix: str) -> builtins.list[tuple[str, str, datetime]]:
        validate_prefix(prefix)
        base = self.root / MULTIPART_DIR
        uploads: builtins.list[tuple[str, str, datetime]] = []
        if not base.is_dir():
            return uploads
        for directory in base.iterdir():
            doc = self._read_meta(directory / "upload.json")
            key = doc.get("key")
            if isinstance(key, str) and key.startswith(prefix):
                uploads.append((key, directory.name, _utc(float(doc.get("initiated", 0)))))
        uploads.sort()
        return uploads

    def _check(self) -> None:
        try:
            (self.root / TMP_DIR).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"storage directory {self.root} is not usable: {exc}") from exc
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise StorageError(f"storage directory {self.root} is not writable")

    def sweep_temp(self, older_than_seconds: float = 24 * 3600) -> int:
        """Remove in-flight files a crashed writer left behind; returns how many."""
        removed = 0
        cutoff = time.time() - older_than_seconds
        tmp = self.root / TMP_DIR
        if not tmp.is_dir():
            return 0
        for entry in tmp.iterdir():
            with contextlib.suppress(FileNotFoundError):
                if entry.stat().st_mtime < cutoff:
                    entry.unlink()
                    removed += 1
        return removed

    # ------------------------------------------------------------- Storage API
    async def put_file(
        self,
        key: str,
        path: Path,
        *,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        """Copy a local file in as ``key``."""

        def run() -> None:
            with path.open("rb") as source:
                self._write(key, iter(lambda: source.read(_CHUNK), b""), content_type, metadata)

        await anyio.to_thread.run_sync(run)

    async def put_bytes(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        """Store ``data`` as ``key``."""
        await anyio.to_thread.run_sync(lambda: self._write(key, [data], content_type, metadata))

    async def get_file(self, key: str, path: Path) -> None:
        """Download ``key`` to ``path`` (atomically); raises :class:`ObjectNotFound`."""
        await anyio.to_thread.run_sync(self._copy_out, key, path)

    async def copy(self, source: str, dest: str, *, if_match: str | None = None) -> None:
        """Copy ``source`` (bytes, type, metadata, ETag) to ``dest``; with ``if_match``
        only the version with that ETag (:class:`ObjectChanged` otherwise)."""
        await anyio.to_thread.run_sync(self._copy, source, dest, if_match)

    async def get_bytes(
        self, key: str, *, start: int | None = None, end: int | None = None
    ) -> bytes:
        """The whole object, or the inclusive range ``start..end`` (``end`` is clamped)."""
        check_range(start, end)
        return await anyio.to_thread.run_sync(self._read_range, key, start, end)

    async def iter_bytes(self, key: str, *, chunk_size: int = _CHUNK) -> AsyncIterator[bytes]:
        """Stream the object in chunks."""
        handle, _ = await anyio.to_thread.run_sync(self.open_object, key)
        try:
            while chunk := await anyio.to_thread.run_sync(handle.read, chunk_size):
                yield chunk
        finally:
            handle.close()

    async def head(self, key: str) -> ObjectInfo | None:
        """Size, type, ETag and metadata of ``key``, or ``None`` when it does not exist."""
        return await anyio.to_thread.run_sync(self._head, key)

    async def delete(self, key: str) -> None:
        """Delete ``key``; a missing key is not an error."""
        await anyio.to_thread.run_sync(self._delete, key)

    async def seal(self, key: str) -> None:
        """Delete ``key`` and refuse writes to it through signed URLs (409
        ``upload_closed``) until it is deleted again; the store's own writes still work.

        What S3 cannot do (a presigned URL works until it expires): the gallery seals an
        upload key once its upload is confirmed, so a replayed URL is refused outright.
        """
        await anyio.to_thread.run_sync(self._seal, key)

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every key under a non-empty ``prefix``; returns how many."""
        return await anyio.to_thread.run_sync(self._delete_prefix, prefix)

    async def list(self, prefix: str) -> AsyncIterator[ObjectInfo]:
        """Every key starting with ``prefix``, in key order."""
        for info in await anyio.to_thread.run_sync(self._list, prefix):
            yield info

    async def presign_get(
        self,
        key: str,
        *,
        expires_in: int,
        download_name: str | None = None,
        content_type: str | None = None,
    ) -> str:
        """A signed URL that GETs and HEADs ``key`` until it expires."""
        if content_type is not None:
            validate_content_type(content_type)
        grant = Grant(
            op=Op.GET,
            key=validate_key(key),
            expires=self.now() + validate_expires(expires_in),
            download_name=download_name,
            response_content_type=content_type,
        )
        return self.object_url(grant)

    async def presign_put(
        self, key: str, *, expires_in: int, content_type: str, content_length: int | None = None
    ) -> str:
        """A signed URL for one PUT with exactly this content type (and length, if given)."""
        if content_length is not None and content_length < 0:
            raise ValueError("content_length must not be negative")
        grant = Grant(
            op=Op.PUT,
            key=validate_key(key),
            expires=self.now() + validate_expires(expires_in),
            content_type=validate_content_type(content_type),
            length=content_length,
        )
        return self.object_url(grant)

    async def presign_post(
        self, key: str, *, expires_in: int, content_type: str, max_bytes: int
    ) -> PresignedPost:
        """A form POST to ``/storage/upload``; the signed fields fix key, type and size."""
        if max_bytes < 1:
            raise ValueError("max_bytes must be at least 1")
        grant = Grant(
            op=Op.POST,
            key=validate_key(key),
            expires=self.now() + validate_expires(expires_in),
            content_type=validate_content_type(content_type),
            length=max_bytes,
        )
        return PresignedPost(
            url=self.base_url + POST_ROUTE,
            fields={
                "key": key,
                "Content-Type": content_type,
                POST_EXPIRES_FIELD: str(grant.expires),
                POST_MAX_FIELD: str(max_bytes),
                POST_SIGNATURE_FIELD: self.signer.sign(grant),
            },
        )

    async def create_multipart(self, key: str, *, content_type: str) -> str:
        """Start a multipart upload; returns its id."""
        return await anyio.to_thread.run_sync(self._create_multipart, key, content_type)

    async def presign_part(
        self,
        key: str,
        upload_id: str,
        part_number: int,
        *,
        expires_in: int,
        content_length: int | None = None,
    ) -> str:
        """A signed URL to PUT one part of a multipart upload (of exactly
        ``content_length`` bytes when given)."""
        self._upload_dir(upload_id)  # validates the id's shape
        if content_length is not None and content_length < 1:
            raise ValueError("content_length must be positive")
        grant = Grant(
            op=Op.PART,
            key=validate_key(key),
            expires=self.now() + validate_expires(expires_in),
            length=content_length,
            upload_id=upload_id,
            part_number=validate_part_number(part_number),
        )
        return self.object_url(grant)

    async def complete_multipart(
        self, key: str, upload_id: str, parts: builtins.list[CompletedPart]
    ) -> None:
        """Assemble the listed parts (ETags checked) into ``key``."""
        await anyio.to_thread.run_sync(self._complete_multipart, key, upload_id, parts)

    async def abort_multipart(self, key: str, upload_id: str) -> None:
        """Discard an upload and its parts; aborting twice is not an error."""

        def run() -> None:
            try:
                directory, _ = self._load_upload(key, upload_id)
            except ObjectNotFound:
                return
            shutil.rmtree(directory, ignore_errors=True)

        await anyio.to_thread.run_sync(run)

    async def list_multipart_uploads(self, prefix: str) -> builtins.list[tuple[str, str, datetime]]:
        """In-progress multipart uploads under ``prefix``: (key, upload_id, initiated)."""
        return await anyio.to_thread.run_sync(self._list_multipart, prefix)

    async def check(self) -> None:
        """Readiness: the directory exists (or can be made) and is writable."""
        await anyio.to_thread.run_sync(self._check)

    async def ensure_bucket(self, cors_origins: builtins.list[str] | None = None) -> None:
        """Create the storage directory (CORS is answered by the router itself)."""
        await self.check()

    # ------------------------------------------------------------------- URLs
    def object_url(self, grant: Grant) -> str:
        """``{base_url}/storage/o/{key}?...`` carrying ``grant`` and its signature."""
        query: dict[str, str] = {"op": grant.op.value, "exp": str(grant.expires)}
        if grant.content_type is not None:
            query["ct"] = grant.content_type
        if grant.length is not None:
            query["len"] = str(grant.length)
        if grant.download_name is not None:
            query["dn"] = grant.download_name
        if grant.response_content_type is not None:
            query["rct"] = grant.response_content_type
        if grant.upload_id is not None:
            query["uid"] = grant.upload_id
        if grant.part_number is not None:
            query["pn"] = str(grant.part_number)
        query["sig"] = self.signer.sign(grant)
        path = quote(grant.key, safe="/")
        return f"{self.base_url}{OBJECT_ROUTE}{path}?{urlencode(query, quote_via=quote)}"
