"""Which URL paths are the gallery's: one fact for everyone who routes by path.

The embedded server's one-port dispatcher, the gateway's proxy and the AWS load
balancer's listener rules all send these prefixes to the gallery and everything else to
the gateway. ``/storage`` is the embedded object store's signed URLs (served by the
gallery); with S3 behind it there is no such path, so the load balancer has no rule for
it.
"""

from __future__ import annotations

#: Outgoing webhooks' routes also answer here (``/api/gallery/webhooks`` is the same).
WEBHOOKS_PREFIX = "/api/webhooks"
#: The gallery's API.
GALLERY_API_PREFIXES = ("/api/gallery", "/api/upload", WEBHOOKS_PREFIX)
#: The local object store's signed URLs (embedded storage only).
STORAGE_PREFIX = "/storage"
GALLERY_PREFIXES = (*GALLERY_API_PREFIXES, STORAGE_PREFIX)


def is_gallery_path(path: str) -> bool:
    """Whether ``path`` is one the gallery answers."""
    return any(path == p or path.startswith(p + "/") for p in GALLERY_PREFIXES)


def load_balancer_patterns() -> list[str]:
    """Path patterns of the load balancer's rule that forwards to the gallery (at most
    five: a listener rule's limit), the webhooks' collection itself among them."""
    return [*(f"{prefix}/*" for prefix in GALLERY_API_PREFIXES), WEBHOOKS_PREFIX]
