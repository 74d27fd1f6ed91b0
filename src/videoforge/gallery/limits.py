"""Rate limits the gallery counts itself, in the shared cache.

Every limit on a gallery action is counted here, once, whichever way the request came
(through the gateway's proxy, or straight to the embedded server): upload URLs, views,
placeholder videos, comments, reports. The gateway forwards those requests uncounted.

Creating a placeholder video (``POST /api/gallery/videos``) is limited here rather
than at the gateway: the request reaches the gallery through the gateway's proxy, from
the gateway's own import call, or (embedded) straight from the one-port server, and
the limit must hold on every path. It is counted per user; the operator may add a
per-address limit, but by default there is none, because the gateway's import calls
all come from the gateway's own address. ``RATE_LIMITS`` sets it like every other
action (``video_create=WINDOW:PER_IP[:PER_USER]``); ``RATE_LIMITS=off`` turns it off.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import structlog

from videoforge.infra.cache.base import Cache
from videoforge.infra.errors import CacheUnavailable, TooManyRequests
from videoforge.infra.forwarded import client_block
from videoforge.settings import Settings, parse_rate_limits

log = structlog.get_logger("videoforge.gallery.limits")

VIDEO_CREATE = "video_create"
#: Issuing upload URLs (each reserves storage until it is swept), per user and address.
UPLOAD_URL = "upload_url"
#: Posting a view, per address (and per user when signed in); fails open (see check).
VIEW = "view"
#: Posting a comment or a reply (gallery.comments), per user and per address.
COMMENT = "comment"
#: Reporting a video or a comment (gallery.moderation), per user and per address.
REPORT = "report"
#: Creating a playlist (gallery.playlists), per user and per address.
PLAYLIST = "playlist"


@dataclass(frozen=True)
class Rule:
    """Hits allowed every ``window`` seconds (None: no limit) for one client address
    (``per_ip``), one user from every address together (``per_user``) and one user from
    one address (``per_user_ip``), as the gateway's rules read ``RATE_LIMITS``."""

    window: int
    per_ip: int | None
    per_user: int | None
    per_user_ip: int | None = None


#: Above the gateway's own limits on jobs and imports (each import makes a placeholder),
#: so this one only binds on placeholders made without them.
DEFAULTS = {
    VIDEO_CREATE: Rule(window=3600, per_ip=None, per_user=100),
    UPLOAD_URL: Rule(window=3600, per_ip=300, per_user=200),
    VIEW: Rule(window=60, per_ip=120, per_user=60),
    # A lively conversation, not a flood: 10 a minute per user, 30 per address (many
    # people may share one address).
    COMMENT: Rule(window=60, per_ip=30, per_user=10),
    REPORT: Rule(window=3600, per_ip=60, per_user=30),
    # Someone sorting their library makes a few dozen at a sitting, not hundreds.
    PLAYLIST: Rule(window=3600, per_ip=120, per_user=60),
}

_MESSAGES = {
    VIDEO_CREATE: "Too many videos created; try again later.",
    UPLOAD_URL: "Too many uploads started; try again later.",
    VIEW: "Too many views from this address.",
    COMMENT: "You are commenting too fast; try again in a moment.",
    REPORT: "Too many reports; try again later.",
    PLAYLIST: "Too many playlists created; try again later.",
}


def rule_for(settings: Settings, action: str) -> Rule | None:
    """The rule in force for ``action``: ``RATE_LIMITS``' one, else the default."""
    spec = settings.rate_limits
    if spec == "off":
        return None
    configured = parse_rate_limits(spec).get(action) if spec else None
    if configured is None:
        return DEFAULTS.get(action)
    window, per_ip, per_user, per_user_ip = configured
    return Rule(window=window, per_ip=per_ip, per_user=per_user, per_user_ip=per_user_ip)


def _subject(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:32]


async def check(
    cache: Cache,
    settings: Settings,
    action: str,
    *,
    ip: str,
    user: str | None,
    fail_open: bool = False,
) -> None:
    """Count one hit of ``action``; 429 ``rate_limited`` with ``Retry-After`` when over.

    With the cache down it fails closed (503, as every cache error) unless ``fail_open``:
    views, whose dedup needs the cache anyway and answers 503 itself.
    """
    rule = rule_for(settings, action)
    if rule is None:
        return
    try:
        await _count(cache, action, rule, ip=ip, user=user)
    except CacheUnavailable:
        if not fail_open:
            raise
        log.warning("rate_limit_skipped", action=action, reason="cache_unavailable")


async def _count(cache: Cache, action: str, rule: Rule, *, ip: str, user: str | None) -> None:
    block = client_block(ip)
    pair = _subject(f"{user}\0{block}") if user else ""
    checks = [
        (f"gallery:rl:{action}:ip:{_subject(block)}", rule.per_ip),
        (f"gallery:rl:{action}:user_ip:{pair}" if user else "", rule.per_user_ip),
        (f"gallery:rl:{action}:user:{_subject(user)}" if user else "", rule.per_user),
    ]
    retry_after = 0
    for key, limit in checks:
        if not key or limit is None:
            continue
        result = await cache.hit(key, limit=limit, window=rule.window)
        if not result.allowed:
            retry_after = max(retry_after, result.retry_after)
    if retry_after:
        log.info("rate_limited", action=action, retry_after=retry_after)
        message = _MESSAGES.get(action, "Too many requests; try again later.")
        raise TooManyRequests(message, retry_after=retry_after)
