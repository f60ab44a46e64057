"""Errors as an HTTP caller meets them: one JSON shape, ``{"error", "message", "field"}``."""

from __future__ import annotations

import math

from pydantic import BaseModel

from tasks.core.errors import Rebuildable


class ErrorBody(BaseModel):
    """Every error answer of the API."""

    #: A stable code: ``invalid_request``, ``idempotency_key_reused``, ``unauthorized``, ...
    error: str
    #: What went wrong, for a person.
    message: str
    #: The request field at fault, for ``invalid_request``; else null.
    field: str | None = None


class ApiError(Rebuildable):
    """An answer other than success: status, code, message, the field at fault, headers."""

    _fields = ("status", "error", "message", "field", "retry_after")
    _plain = frozenset({"error", "field"})

    def __init__(
        self,
        status: int,
        error: str,
        message: str,
        *,
        field: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = ErrorBody(error=error, message=message, field=field)
        self.retry_after = retry_after
        self.headers = {} if retry_after is None else {"Retry-After": str(math.ceil(retry_after))}

    @property
    def error(self) -> str:
        """The stable code (``body.error``)."""
        return self.body.error

    @property
    def message(self) -> str:
        """What went wrong, for a person (``body.message``)."""
        return self.body.message

    @property
    def field(self) -> str | None:
        """The request field at fault (``body.field``)."""
        return self.body.field


def unauthorized(message: str = "a valid API token is required") -> ApiError:
    """401: no token, a malformed one, or one revoked."""
    return ApiError(401, "unauthorized", message)


def forbidden(message: str) -> ApiError:
    """403: the token's scope does not allow this."""
    return ApiError(403, "forbidden", message)


def not_found(message: str = "no such send") -> ApiError:
    """404."""
    return ApiError(404, "not_found", message)


def unavailable(service: str) -> ApiError:
    """503: Redis or the broker did not answer; nothing was enqueued."""
    return ApiError(
        503,
        "service_unavailable",
        f"{service} did not answer; nothing was enqueued, retry later",
        retry_after=RETRY_AFTER_UNAVAILABLE,
    )


#: Seconds a caller is asked to wait when Redis or the broker is away.
RETRY_AFTER_UNAVAILABLE = 5
