"""Rate limits per client address and per user, counted in the shared cache (Redis or
in-process).

Each action has a rule: how many hits per window for one client address, for one user
from one address, and for one user from every address together. A hit over any limit
is a 429 ``rate_limited`` with ``Retry-After``. The windows are fixed (``cache.hit``),
which is cheap and good enough against brute force and abuse.

Log-in is limited per (account, address) with a higher cap per account: a stranger who
keeps guessing someone's password locks out only their own address, while a guess
attack spread over many addresses is still bounded by the account's cap. The limits of
the caller's own address are checked first and the account's cap last, and a refused
hit is not counted against the limits after it: requests refused for one address never
use up the account's cap. IPv6 clients are counted per /64, the block one subscriber
usually holds.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from enum import StrEnum

import structlog
from fastapi import Request

from videoforge.infra.cache.base import Cache
from videoforge.infra.errors import CacheUnavailable, TooManyRequests
from videoforge.infra.forwarded import client_block
from videoforge.settings import Settings, parse_rate_limits

log = structlog.get_logger("videoforge.gateway.ratelimit")


class Action(StrEnum):
    SIGNUP = "signup"
    LOGIN = "login"
    JOB_CREATE = "job_create"
    IMPORT = "import"
    #: Mail to an address: "user" is the address (or the account), so one address
    #: cannot be flooded from many clients, nor many addresses from one.
    PASSWORD_FORGOT = "password_forgot"  # noqa: S105 - an action name, not a secret
    CONFIRM_RESEND = "confirm_resend"
    EMAIL_CHANGE = "email_change"
    #: Counted by the gallery itself (no rule here), so that each holds once, whichever
    #: way the request arrives (gallery/limits.py); named so ``RATE_LIMITS`` may set them.
    UPLOAD_URL = "upload_url"
    VIEW = "view"
    VIDEO_CREATE = "video_create"
    #: Also counted by the gallery (posting comments, reporting, creating playlists).
    COMMENT = "comment"
    REPORT = "report"
    PLAYLIST = "playlist"


@dataclass(frozen=True)
class Rule:
    """Hits allowed every ``window`` seconds (None: no limit) for one client address
    (``per_ip``), one user from every address together (``per_user``) and one user from
    one address (``per_user_ip``)."""

    window: int
    per_ip: int | None
    per_user: int | None = None
    per_user_ip: int | None = None


def _default_rules() -> dict[Action, Rule]:
    return {
        # Sign-up and log-in have no user yet: "user" is the e-mail address tried.
        Action.SIGNUP: Rule(window=3600, per_ip=20, per_user=5),
        # Ten tries per account from one address; five such addresses to reach the cap.
        Action.LOGIN: Rule(window=300, per_ip=30, per_user=50, per_user_ip=10),
        Action.JOB_CREATE: Rule(window=3600, per_ip=300, per_user=100),
        Action.IMPORT: Rule(window=3600, per_ip=60, per_user=30),
        Action.PASSWORD_FORGOT: Rule(window=3600, per_ip=20, per_user=5),
        Action.CONFIRM_RESEND: Rule(window=3600, per_ip=20, per_user=5),
        Action.EMAIL_CHANGE: Rule(window=3600, per_ip=20, per_user=5),
    }


@dataclass(frozen=True)
class RateLimits:
    """The rules of every action; override some with :meth:`with_rules`."""

    rules: dict[Action, Rule] = field(default_factory=_default_rules)
    enabled: bool = True

    def with_rules(self, **rules: Rule) -> RateLimits:
        merged = dict(self.rules)
        for name, rule in rules.items():
            merged[Action(name)] = rule
        return replace(self, rules=merged)

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimits:
        """The defaults, overridden by ``RATE_LIMITS`` (see :func:`parse_rate_limits`)."""
        spec = settings.rate_limits
        if spec is None:
            return cls()
        if spec == "off":
            return cls(enabled=False)
        return cls().with_rules(
            **{
                name: Rule(window=window, per_ip=per_ip, per_user=per_user, per_user_ip=both)
                for name, (window, per_ip, per_user, both) in parse_rate_limits(spec).items()
            }
        )


def client_ip(request: Request) -> str:
    """The peer address (uvicorn rewrites it from X-Forwarded-For for trusted proxies)."""
    return request.client.host if request.client else "unknown"


def _subject(value: str) -> str:
    # Keys never carry raw e-mail addresses (they may end up in Redis dumps or logs).
    return hashlib.sha256(value.encode()).hexdigest()[:32]


#: Actions allowed without a limit while the cache is down (docs/operations.md, §9):
#: none of the gateway's. Log-in and sign-up must never lose their brute-force limits;
#: views, the one action that fails open, are counted by the gallery (gallery/limits.py).
FAIL_OPEN: frozenset[Action] = frozenset()


class RateLimiter:
    """Checks and counts hits of an action; raises :class:`TooManyRequests`."""

    def __init__(self, cache: Cache, limits: RateLimits | None = None) -> None:
        self.cache = cache
        self.limits = limits or RateLimits()

    async def check(self, action: Action, *, ip: str, user: str | None = None) -> None:
        """:meth:`_check`, and when the cache is down: 503 (:class:`CacheUnavailable`),
        or no limit for the actions in :data:`FAIL_OPEN`."""
        try:
            await self._check(action, ip=ip, user=user)
        except CacheUnavailable:
            if action not in FAIL_OPEN:
                raise
            log.warning("rate_limit_skipped", action=str(action), reason="cache_unavailable")

    async def _check(self, action: Action, *, ip: str, user: str | None = None) -> None:
        """Count one hit for the address and (when known) the user; 429 over any limit.

        The address's limits come first and the user's cap last; a refused hit is not
        counted against the limits after the one that refused it."""
        if not self.limits.enabled:
            return
        rule = self.limits.rules.get(action)
        if rule is None:
            return
        block = client_block(ip)
        checks: list[tuple[str, str, int]] = []
        if rule.per_ip is not None:
            checks.append(("ip", f"rl:{action}:ip:{_subject(block)}", rule.per_ip))
        if user and rule.per_user_ip is not None:
            pair = _subject(f"{user}\0{block}")
            checks.append(("user_ip", f"rl:{action}:user_ip:{pair}", rule.per_user_ip))
        if user and rule.per_user is not None:
            checks.append(("user", f"rl:{action}:user:{_subject(user)}", rule.per_user))
        for scope, key, limit in checks:
            result = await self.cache.hit(key, limit=limit, window=rule.window)
            if not result.allowed:
                log.info(
                    "rate_limited", action=str(action), scope=scope, retry_after=result.retry_after
                )
                raise TooManyRequests(
                    "Too many requests; slow down and try again shortly.",
                    retry_after=result.retry_after,
                )
