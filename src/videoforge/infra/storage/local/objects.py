"""Single objects of the local store, synchronously: write, read, copy, seal, delete and
list under the directory locks that keep bytes and metadata together.

:class:`LocalObjects` is the base the multipart, presigning and async parts of
:class:`~.store.LocalStorage` share; its methods run in worker threads.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO

from videoforge.infra.storage.base import (
    InvalidRange,
    ObjectChanged,
    ObjectInfo,
    ObjectNotFound,
    StorageError,
    normalize_metadata,
    strip_etag,
    validate_content_type,
    validate_key,
    validate_prefix,
)
from videoforge.infra.storage.local.files import (
    CHUNK,
    DATA_SUFFIX,
    META_SUFFIX,
    TMP_DIR,
    KeySealed,
    PendingWrite,
    dir_lock,
    encode_segment,
    read_meta,
    utc,
)
from videoforge.infra.storage.signing import UrlSigner

DEFAULT_MAX_PUT = 5 * 1024**3  # S3's single-PUT limit


class LocalObjects:
    """The objects under one directory, and what every part of the store shares."""

    def __init__(
        self,
        root: Path,
        *,
        signing_key: bytes,
        base_url: str = "",
        max_put_bytes: int = DEFAULT_MAX_PUT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.root = Path(os.path.abspath(root))
        self.signer = UrlSigner(signing_key)
        self.base_url = base_url.rstrip("/")
        #: Upper bound for a PUT (single object or part) whose URL carries no exact length.
        self.max_put_bytes = max_put_bytes
        self._clock = clock

    def now(self) -> int:
        return int(self._clock())

    # ------------------------------------------------------------------ layout
    def object_paths(self, key: str) -> tuple[Path, Path]:
        """(data file, metadata file) for a key, after validating it."""
        segments = [encode_segment(s) for s in validate_key(key).split("/")]
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
            last_modified=utc(time.time()),
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
                with dir_lock(parent, exclusive=True, required=True):
                    if unless_sealed and read_meta(meta_dst).get("sealed") is True:
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

    def _info(self, key: str, meta_path: Path, st: os.stat_result) -> ObjectInfo:
        doc = read_meta(meta_path)
        metadata = doc.get("metadata")
        return ObjectInfo(
            key=key,
            size=st.st_size,
            content_type=doc.get("content_type"),
            etag=doc.get("etag"),
            last_modified=utc(st.st_mtime),
            metadata=dict(metadata) if isinstance(metadata, dict) else {},
        )

    def open_object(self, key: str) -> tuple[IO[bytes], ObjectInfo]:
        """Open ``key`` for reading; the handle stays valid if the key is replaced meanwhile."""
        data_path, meta_path = self.object_paths(key)
        with dir_lock(data_path.parent, exclusive=False):
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
        with dir_lock(data_path.parent, exclusive=False):
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
                shutil.copyfileobj(handle, out, CHUNK)
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
                        shutil.copyfileobj(handle, out, CHUNK)
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
                    with dir_lock(data_path.parent, exclusive=True, required=True):
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
        return read_meta(meta_path).get("sealed") is True

    def _delete(self, key: str) -> bool:
        data_path, meta_path = self.object_paths(key)
        existed = True
        with dir_lock(data_path.parent, exclusive=True):
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
        start = self.root.joinpath(*(encode_segment(s) for s in segments[:-1]))
        root = str(self.root)
        found: builtins.list[ObjectInfo] = []
        for dirpath, dirnames, filenames in os.walk(start):
            if dirpath == root:
                dirnames[:] = [d for d in dirnames if not d.startswith("~")]
            with dir_lock(Path(dirpath), exclusive=False):
                for name in filenames:
                    if not name.endswith(META_SUFFIX):
                        continue
                    meta_path = Path(dirpath, name)
                    key = read_meta(meta_path).get("key")
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
