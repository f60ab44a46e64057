"""The JSON API: ``POST /v1/sends``, ``GET /v1/sends/{key}``, ``/healthz``, ``/readyz``.

Each handler reads the request on the event loop and does its Redis and broker calls in one trip
to the thread pool (:class:`SendsApi`), so a slow Redis never stalls the server.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from tasks.api import SendHandle, delivery_status, send_prepared_sms
from tasks.core.errors import IdempotencyConflict, InvalidSendRequest, ServiceUnavailable
from tasks.core.outages import unavailable_as
from tasks.core.request import validate_idempotency_key
from tasks.http.problems import (
    RETRY_AFTER_UNAVAILABLE,
    ApiError,
    forbidden,
    not_found,
    unauthorized,
    unavailable,
)
from tasks.http.schemas import Health, SendAccepted, SendRequestBody, SendStatus, errors
from tasks.http.sends import MAX_BODY_BYTES, SendBody, SendOwner, parse_send_body
from tasks.http.services import HttpServices
from tasks.http.tokens import Scope, Token, well_formed
from tasks.worker.app import app as celery_app

IDEMPOTENCY_HEADER = "Idempotency-Key"
BEARER: dict[str, Any] = {"security": [{"bearerAuth": []}]}


def api_router(services: Callable[[], HttpServices]) -> APIRouter:
    """The API's routes on the services ``services()`` returns."""
    router = APIRouter()

    @router.post(
        "/v1/sends",
        status_code=202,
        response_model=SendAccepted,
        responses=errors(400, 401, 403, 413, 422, 429, 503),
        summary="Enqueue one prepared SMS (scope send)",
        openapi_extra={
            **BEARER,
            "parameters": [
                {
                    "name": IDEMPOTENCY_HEADER,
                    "in": "header",
                    "required": True,
                    "description": "One key per logical send: the same key and body again "
                    "enqueue nothing more",
                    "schema": {"type": "string", "maxLength": 255},
                }
            ],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": SendRequestBody.model_json_schema()}},
            },
        },
    )
    async def create_send(request: Request) -> JSONResponse:
        body = await read_limited(request)
        sends = SendsApi(services())
        accepted = await run_in_threadpool(
            sends.create,
            request.headers.get("authorization"),
            idempotency_key(request),
            body,
        )
        return JSONResponse(accepted.model_dump(), status_code=202)

    @router.get(
        "/v1/sends/{key:path}",
        response_model=SendStatus,
        responses=errors(401, 403, 404, 429, 503),
        summary="Where a send stands (scope read, or the token that sent it)",
        openapi_extra=BEARER,
    )
    async def get_send(key: str, request: Request) -> JSONResponse:
        sends = SendsApi(services())
        status = await run_in_threadpool(sends.status, request.headers.get("authorization"), key)
        return JSONResponse(status)

    @router.get("/healthz", response_model=Health, summary="The process is up")
    async def healthz() -> Health:
        return Health(status="ok")

    @router.get(
        "/readyz",
        response_model=Health,
        responses={503: {"model": Health, "description": "Redis or the broker did not answer"}},
        summary="Redis and the broker answer",
    )
    async def readyz() -> JSONResponse:
        checks = await run_in_threadpool(readiness, services())
        ready = all(value == "ok" for value in checks.values())
        body = Health(status="ok" if ready else "unavailable", checks=checks)
        if ready:
            return JSONResponse(body.model_dump())
        wait = {"Retry-After": str(RETRY_AFTER_UNAVAILABLE)}
        return JSONResponse(body.model_dump(), status_code=503, headers=wait)

    return router


#: 401's message when Redis holds no token at all.
NO_TOKENS_LEFT = (
    "no API token exists in this deployment's Redis (none made yet, or Redis lost its data, "
    "tokens included): make new ones with engage-sms tokens create"
)


def idempotency_key(request: Request) -> str | None:
    """The Idempotency-Key header, or None; sent twice, one value joined by commas, as HTTP
    defines it (RFC 9110, 5.3) and as a proxy that merges the lines passes it on."""
    values = request.headers.getlist(IDEMPOTENCY_HEADER)
    return ", ".join(values) if values else None


async def read_limited(request: Request) -> bytes:
    """The request body, 413 past :data:`MAX_BODY_BYTES` (read no further than that)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise too_large()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise too_large()
        chunks.append(chunk)
    return b"".join(chunks)


def too_large() -> ApiError:
    """413."""
    return ApiError(413, "payload_too_large", f"the body is over {MAX_BODY_BYTES} bytes")


class SendsApi:
    """The API's work, in a worker thread: authenticate, limit, validate, enqueue, read."""

    def __init__(self, services: HttpServices) -> None:
        self._s = services
        self._settings = services.runtime.settings

    def authenticate(self, authorization: str | None, *scopes: Scope) -> Token:
        """The request's token: 401 without a valid one, 403 out of scope, 429 over its rate."""
        scheme, _, presented = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            raise unauthorized("send Authorization: Bearer TOKEN")
        token = self._s.tokens.authenticate(presented.strip())
        # A malformed token is refused without asking Redis; a well-formed one unknown in a
        # Redis that holds no token at all most likely went with its data: say so.
        if token is None and well_formed(presented.strip()) and not self._s.tokens.any_left():
            raise unauthorized(NO_TOKENS_LEFT)
        if token is None:
            raise unauthorized("the token is unknown or revoked")
        if scopes and not token.allows(*scopes):
            raise forbidden(f"a token of scope {token.scope.value} may not do this")
        wait = self._s.limits.admit(token)
        if wait is not None:
            raise ApiError(429, "rate_limited", "too many requests", retry_after=wait)
        return token

    def create(self, authorization: str | None, key: str | None, body: bytes) -> SendAccepted:
        """Enqueue the send described by ``body`` under ``key`` (``POST /v1/sends``)."""
        try:
            with unavailable_as("redis", self._settings.redis_url):
                return self._create(authorization, key, body)
        except ServiceUnavailable as err:
            raise unavailable("Redis" if err.service == "redis" else "the broker") from None
        except InvalidSendRequest as err:
            field = IDEMPOTENCY_HEADER if err.field == "idempotency_key" else err.field
            raise ApiError(400, "invalid_request", str(err), field=field) from None

    def _create(self, authorization: str | None, key: str | None, body: bytes) -> SendAccepted:
        token = self.authenticate(authorization, Scope.SEND)
        if key is None:
            raise ApiError(
                400,
                "idempotency_key_missing",
                f"the {IDEMPOTENCY_HEADER} header is required: one key per logical send",
                field=IDEMPOTENCY_HEADER,
            )
        key = validate_idempotency_key(header_text(key))
        send = parse_send_body(body, self._settings.numbers)
        owner = SendOwner(token.id, send.callback_url, send.priority.value)
        claim = self._s.owners.claim(key, owner, self._s.runtime.keys.send(key))
        if claim.recorded and claim.key_was_taken:
            # Enqueued before, not over HTTP (the Python API, the CLI): not this token's key.
            self._s.owners.release(key, owner)
            raise reused(key)
        if not claim.recorded and not owner.same_request(claim.existing):
            raise reused(key)
        # A send is created only where the ledger did not know the key: every request that
        # may create one (the first, or a repeat racing it) takes a slot of the daily cap and
        # gives it back unless it created the send. The record stays: a repeat that comes while
        # another request is under way, or after one failed, is this token's, never a 422.
        reserved = not claim.key_was_taken
        if reserved:
            wait = self._s.limits.reserve_send(token)
            if wait is not None:
                raise ApiError(
                    429,
                    "daily_cap_reached",
                    "this token's daily send cap is reached",
                    retry_after=wait,
                )
        try:
            handle = self._enqueue(key, send)
        except BaseException:
            if reserved:
                self._s.limits.release_send(token)
            raise
        if reserved and not handle.created:
            self._s.limits.release_send(token)
        if handle.created and send.callback_url is not None:
            self._s.owners.watch_callback(key)
        return SendAccepted(
            key=key, state=handle.state, created=handle.created, status_url=status_url(key)
        )

    def _enqueue(self, key: str, send: SendBody) -> SendHandle:
        try:
            return send_prepared_sms(
                send.request.message_id,
                **send.arguments,
                idempotency_key=key,
                priority=send.priority,
                **send.policy,
            )
        except IdempotencyConflict:
            raise reused(key) from None

    def status(self, authorization: str | None, key: str) -> dict[str, Any]:
        """The status of ``key`` (``GET /v1/sends/{key}``)."""
        try:
            with unavailable_as("redis", self._settings.redis_url):
                token = self.authenticate(authorization)
                if not token.allows(Scope.READ):
                    owner = self._s.owners.get(key)
                    if owner is None or owner.token_id != token.id:
                        # Not this token's: as if unknown, so keys of others are not probed.
                        raise not_found()
                    self._s.owners.follow_ledger(key)
                status = delivery_status(key)
        except ServiceUnavailable:
            raise unavailable("Redis") from None
        if status["state"] == "unknown":
            raise not_found()
        return status


def header_text(value: str) -> str:
    """A header's text as its sender wrote it: the server hands over its bytes as Latin-1, and
    a web app sends UTF-8 (InvalidSendRequest for bytes that are not)."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        raise InvalidSendRequest("idempotency_key", "must be UTF-8 text") from None


def reused(key: str) -> ApiError:
    """422: the key was used for a different request."""
    return ApiError(
        422,
        "idempotency_key_reused",
        "this Idempotency-Key was used for a different request; use a new key for a new send",
        field=IDEMPOTENCY_HEADER,
    )


def status_url(key: str) -> str:
    """Where the status of ``key`` is read (relative to the API's root)."""
    return f"/v1/sends/{quote(key, safe='')}"


def readiness(services: HttpServices) -> dict[str, str]:
    """``ok`` or why not, for Redis and the broker."""
    checks: dict[str, str] = {}
    try:
        services.runtime.redis.ping()
        checks["redis"] = "ok"
    except Exception as err:  # any failure means not ready; the type says which
        checks["redis"] = f"unavailable ({type(err).__name__})"
    try:
        with celery_app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, timeout=2)
        checks["broker"] = "ok"
    except Exception as err:  # kombu raises many types
        checks["broker"] = f"unavailable ({type(err).__name__})"
    return checks
