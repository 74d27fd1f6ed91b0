"""One error hierarchy with stable codes, rendered as ``{"error": {"code", "message"}}``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException


class AppError(Exception):
    """Base of every error a client may see. ``code`` is stable and machine-readable."""

    status_code: ClassVar[int] = 400
    code: str = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details
        self.headers = headers or {}


class BadRequest(AppError):
    status_code = 400
    code = "bad_request"


class Unauthorized(AppError):
    status_code = 401
    code = "unauthorized"


class Forbidden(AppError):
    status_code = 403
    code = "forbidden"


class NotFound(AppError):
    status_code = 404
    code = "not_found"


class Conflict(AppError):
    status_code = 409
    code = "conflict"


class PreconditionFailed(AppError):
    status_code = 412
    code = "precondition_failed"


class PayloadTooLarge(AppError):
    status_code = 413
    code = "payload_too_large"


class UnsupportedMediaType(AppError):
    status_code = 415
    code = "unsupported_media_type"


class UnprocessableEntity(AppError):
    status_code = 422
    code = "validation_error"


class TooManyRequests(AppError):
    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int, code: str | None = None) -> None:
        super().__init__(message, code=code, headers={"Retry-After": str(max(1, retry_after))})
        self.retry_after = retry_after


#: How long clients are told to wait (``Retry-After``) when a dependency is down: long
#: enough not to hammer a restarting server, short enough that a blip is not noticed.
RETRY_AFTER_SECONDS = 5


class ServiceUnavailable(AppError):
    """503 with ``Retry-After``: the request was fine, try it again shortly."""

    status_code = 503
    code = "unavailable"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: Any = None,
        headers: dict[str, str] | None = None,
        retry_after: int = RETRY_AFTER_SECONDS,
    ) -> None:
        merged = {"Retry-After": str(max(1, retry_after)), **(headers or {})}
        super().__init__(message, code=code, details=details, headers=merged)


class DependencyUnavailable(ServiceUnavailable):
    """A backing service (the cache, the database) cannot be reached. Always the stable
    code ``unavailable``; ``details.dependency`` says which one."""

    dependency: ClassVar[str] = "backing service"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(
            message or f"The {self.dependency} is unavailable; try again shortly.",
            details={"dependency": self.dependency},
        )


class CacheUnavailable(DependencyUnavailable):
    """The cache (Redis) refused, dropped or timed out a command."""

    dependency = "cache"


class DatabaseUnavailable(DependencyUnavailable):
    """The database could not be reached, or dropped the connection."""

    dependency = "database"


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    return {"error": body}


#: No cache may keep an error: a 404 is cacheable by default (RFC 9111), and an
#: answer to a signed URL or a caller's request says nothing about the next one.
ERROR_CACHE_CONTROL = "no-store"


def error_response(
    code: str,
    message: str,
    status_code: int,
    *,
    details: Any = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """An error in the one format, never stored by a cache (``headers`` may say otherwise)."""
    return JSONResponse(
        error_body(code, message, details),
        status_code=status_code,
        headers={"Cache-Control": ERROR_CACHE_CONTROL, **(headers or {})},
    )


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def unavailable_from(exc: BaseException) -> DependencyUnavailable | None:
    """The outage an unexpected exception stands for (the cache or the database cannot
    be reached), or None when it is a bug. The cache already raises
    :class:`CacheUnavailable` itself; this also catches the raw driver errors."""
    # Imported here: this module is imported by everything and stays free of backends.
    from videoforge.infra.cache.redis import is_cache_outage
    from videoforge.infra.db import is_connection_error

    if isinstance(exc, DependencyUnavailable):
        return exc
    if is_cache_outage(exc):
        return CacheUnavailable()
    if is_connection_error(exc):
        return DatabaseUnavailable()
    return None


def log_failure(logger: Any, event: str, exc: BaseException, **fields: Any) -> None:
    """Log a failed round of background work (a loop that tries again later).

    An outage of the cache or the database is one warning naming the dependency and the
    cause: a loop retrying through an outage would otherwise log a traceback every round.
    Anything else may be a bug and keeps its traceback.
    """
    outage = unavailable_from(exc)
    if outage is None:
        logger.error(event, exc_info=exc, **fields)
        return
    cause = f"{type(exc).__name__}: {exc}"[:300]
    logger.warning(event, dependency=outage.dependency, error=cause, **fields)


def install_error_handlers(app: FastAPI) -> None:
    """Render every error — ours, validation, routing, unexpected — in the one format."""

    @app.exception_handler(AppError)
    async def _app_error(_: Request, exc: AppError) -> JSONResponse:
        if isinstance(exc, DependencyUnavailable):
            # An outage, not a bug: one line without a traceback (an outage would
            # otherwise log hundreds of them a second), and a 503 the client retries.
            import structlog

            cause = exc.__cause__
            structlog.get_logger("videoforge.errors").warning(
                "dependency_unavailable",
                dependency=exc.dependency,
                error=None if cause is None else f"{type(cause).__name__}: {cause}"[:300],
            )
        return error_response(
            exc.code, exc.message, exc.status_code, details=exc.details, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        first = details[0] if details else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(p) for p in first["loc"][1:]) or "request"
        return error_response(
            "validation_error", f"Invalid {where}: {first['msg']}", 422, details=details
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return error_response(
            code, str(exc.detail), exc.status_code, headers=getattr(exc, "headers", None)
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        import structlog

        outage = unavailable_from(exc)
        if outage is not None:
            if outage is not exc:
                outage.__cause__ = exc
            return await _app_error(request, outage)
        structlog.get_logger("videoforge.errors").exception("unhandled_error", exc_info=exc)
        return error_response("internal_error", "Something went wrong on our side.", 500)
