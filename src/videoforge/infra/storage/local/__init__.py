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
(:func:`~videoforge.infra.storage.base.validate_key`).

Writes go to a temporary file that is fsynced and renamed over the target, so a reader
sees the old object or the new one, never a partial one. The metadata and data renames
happen under an exclusive ``flock`` of the object's directory and readers take it
shared, so bytes and metadata always come from the same write, even across processes.

One concern per module:

- :mod:`.files`: the on-disk primitives (segment encoding, directory locks, pending
  writes);
- :mod:`.objects`: single objects (write, read, copy, seal, delete, list);
- :mod:`.multipart`: multipart uploads;
- :mod:`.presign`: signed URLs and form POSTs, ``{base_url}/storage/...``, served by
  :mod:`videoforge.infra.storage.http`;
- :mod:`.store`: :class:`~.store.LocalStorage`, the ``Storage`` protocol on all of them.
"""
