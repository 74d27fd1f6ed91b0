"""Rate limits per user and per IP, counted in the shared cache (Redis or in-process).

Each action has a rule: how many hits per window for one client IP and for one user.
A hit over either limit is a 429 ``rate_limited`` with ``Retry-After``. The windows are
fixed (``cache.hit``), which is cheap and good enough against brute force and abuse.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from enum import StrEnum

import structlog
from fastapi import Request

from videoforge.infra.cache.base import Cache
from videoforge.infra.errors import TooManyRequests
from videoforge.settings import Settings, parse_rate_limits

log = structlog.get_logger("videoforge.gateway.ratelimit")


class Action(StrEnum):
    SIGNUP = "signup"
    LOGIN = "login"
    UPLOAD_URL = "upload_url"
    JOB_CREATE = "job_create"
    IMPORT = "import"
    VIEW = "view"


@dataclass(frozen=True)
class Rule:
    """``per_ip`` / ``per_user`` hits allowed every ``window`` seconds (None: no limit)."""

    window: int
    per_ip: int | None
    per_user: int | None = None


def _default_rules() -> dict[Action, Rule]:
    return {
        # Sign-up and log-in have no user yet: "user" is the e-mail address tried.
        Action.SIGNUP: Rule(window=3600, per_ip=20, per_user=5),
        Action.LOGIN: Rule(window=300, per_ip=30, per_user=10),
        Action.UPLOAD_URL: Rule(window=3600, per_ip=300, per_user=200),
        Action.JOB_CREATE: Rule(window=3600, per_ip=300, per_user=100),
        Action.IMPORT: Rule(window=3600, per_ip=60, per_user=30),
        Action.VIEW: Rule(window=60, per_ip=120, per_user=60),
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
                name: Rule(window=window, per_ip=per_ip, per_user=per_user)
                for name, (window, per_ip, per_user) in parse_rate_limits(spec).items()
            }
        )


def client_ip(request: Request) -> str:
    """The peer address (uvicorn rewrites it from X-Forwarded-For for trusted proxies)."""
    return request.client.host if request.client else "unknown"


def _subject(value: str) -> str:
    # Keys never carry raw e-mail addresses (they may end up in Redis dumps or logs).
    return hashlib.sha256(value.encode()).hexdigest()[:32]


class RateLimiter:
    """Checks and counts hits of an action; raises :class:`TooManyRequests`."""

    def __init__(self, cache: Cache, limits: RateLimits | None = None) -> None:
        self.cache = cache
        self.limits = limits or RateLimits()

    async def check(self, action: Action, *, ip: str, user: str | None = None) -> None:
        """Count one hit for the IP and (when known) the user; 429 over either limit."""
        if not self.limits.enabled:
            return
        rule = self.limits.rules.get(action)
        if rule is None:
            return
        retry_after = 0
        checks: list[tuple[str, int]] = []
        if rule.per_ip is not None:
            checks.append((f"rl:{action}:ip:{_subject(ip)}", rule.per_ip))
        if rule.per_user is not None and user:
            checks.append((f"rl:{action}:user:{_subject(user)}", rule.per_user))
        for key, limit in checks:
            result = await self.cache.hit(key, limit=limit, window=rule.window)
            if not result.allowed:
                retry_after = max(retry_after, result.retry_after)
        if retry_after:
            log.info("rate_limited", action=str(action), retry_after=retry_after)
            raise TooManyRequests(
                "Too many requests; slow down and try again shortly.", retry_after=retry_after
            )
