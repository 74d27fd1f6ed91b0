"""Container health check: exit 0 when this container's service answers.

HTTP services (serve, gateway, gallery) answer ``GET /health`` on ``PORT``. The worker
has no HTTP server: it is checked on its Prometheus endpoint, so ``METRICS_PORT`` is
set on worker containers only. ``HEALTHCHECK_URL`` overrides both.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def target() -> str:
    if os.environ.get("HEALTHCHECK_URL"):
        return os.environ["HEALTHCHECK_URL"]
    if os.environ.get("METRICS_PORT"):
        return f"http://127.0.0.1:{os.environ['METRICS_PORT']}/metrics"
    return f"http://127.0.0.1:{os.environ.get('PORT', '8000')}/health"


def main() -> int:
    url = target()
    try:
        with urllib.request.urlopen(url, timeout=4) as response:  # noqa: S310 - loopback URL
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
