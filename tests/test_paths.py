"""The gallery's paths: one fact for the embedded dispatcher, the proxy and the ALB."""

from __future__ import annotations

import pytest

from videoforge.gateway.gallery.proxy import router
from videoforge.paths import GALLERY_PREFIXES, is_gallery_path, load_balancer_patterns


@pytest.mark.parametrize(
    ("path", "gallery"),
    [
        ("/api/gallery/videos", True),
        ("/api/gallery", True),
        ("/api/upload/url", True),
        ("/api/webhooks", True),
        ("/api/webhooks/1/deliveries", True),
        ("/api/webhooksx", False),
        ("/storage/o/x?sig=1", True),
        ("/api/galleryx", False),
        ("/api/jobs", False),
        ("/", False),
        ("/storagefoo", False),
    ],
)
def test_which_paths_are_the_gallerys(path: str, gallery: bool) -> None:
    assert is_gallery_path(path) is gallery


def test_the_proxy_forwards_exactly_the_gallerys_prefixes() -> None:
    paths = {getattr(route, "path", "") for route in router.routes}
    assert paths == {f"{prefix}/{{path:path}}" for prefix in GALLERY_PREFIXES} | {"/api/webhooks"}


def test_the_load_balancer_rule_covers_the_api_but_not_the_local_store() -> None:
    assert load_balancer_patterns() == [
        "/api/gallery/*",
        "/api/upload/*",
        "/api/webhooks/*",
        "/api/webhooks",
    ]
