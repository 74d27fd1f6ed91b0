"""S3 (or any S3-compatible endpoint) behind the
:class:`~videoforge.infra.storage.base.Storage` protocol.

boto3 is synchronous; every call runs in a worker thread (``anyio.to_thread``) so the
event loop never blocks on the network. Large files go through boto3's managed transfer
(multipart above ``multipart_threshold``).

Presigned URLs are built by a second client when ``S3_PUBLIC_ENDPOINT_URL`` is set: the
services may reach the store at an internal address (``http://minio:9000``) while
browsers need the public one, and a SigV4 signature covers the host, so the URL must be
signed for the host the browser will use. Signing makes no network call.

botocore errors are mapped once, in :func:`.client.translate`: 404 / ``NoSuchKey`` /
``NoSuchUpload`` become :class:`ObjectNotFound`, everything else (connection failures,
5xx, throttling) :class:`StorageError`.

One concern per module: :mod:`.client` (the clients, transfer settings, error mapping),
:mod:`.presign` (presigned URLs and form POSTs), :mod:`.multipart` (multipart uploads),
:mod:`.store` (:class:`~.store.S3Storage`: objects and the bucket itself).
"""
