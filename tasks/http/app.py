"""The FastAPI application: the JSON API, the console, one error shape, the OpenAPI document."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from tasks.core.errors import ServiceUnavailable
from tasks.http.api_routes import api_router
from tasks.http.console import console_errors, console_router, unavailable_page
from tasks.http.problems import ApiError, ErrorBody, unavailable
from tasks.http.services import HttpServices, current_services

#: Errors of the HTTP layer without a code of their own.
_STATUS_CODES = {404: "not_found", 405: "method_not_allowed"}


def create_app(
    services: Callable[[], HttpServices] = current_services,
    *,
    on_start: Callable[[], Callable[[], None]] | None = None,
) -> FastAPI:
    """The application on ``services()``; ``on_start`` runs at start up and returns its stop."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        stop = on_start() if on_start is not None else None
        try:
            yield
        finally:
            if stop is not None:
                stop()

    app = FastAPI(
        title="engage-sms",
        summary="Enqueue Mapp Engage prepared SMS over HTTP: never twice, never lost silently.",
        version="1",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.include_router(api_router(services))
    app.include_router(console_router(services))
    for error, handler in console_errors().items():
        app.add_exception_handler(error, handler)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(ServiceUnavailable, _unavailable)
    for outage in (redis.ConnectionError, redis.TimeoutError):
        app.add_exception_handler(outage, _unavailable)
    app.add_exception_handler(Exception, _failed)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document plus the bearer scheme the API's operations name."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, summary=app.summary, routes=app.routes
        )
        components = schema.setdefault("components", {})
        components.setdefault("schemas", {})["ErrorBody"] = ErrorBody.model_json_schema()
        components["securitySchemes"] = {
            "bearerAuth": {"type": "http", "scheme": "bearer", "description": "An API token"}
        }
        app.openapi_schema = schema
    return app.openapi_schema


def _json(error: ApiError) -> JSONResponse:
    return JSONResponse(error.body.model_dump(), status_code=error.status, headers=error.headers)


async def _api_error(_: Request, err: Exception) -> Response:
    assert isinstance(err, ApiError)
    return _json(err)


async def _http_error(_: Request, err: Exception) -> Response:
    assert isinstance(err, StarletteHTTPException)
    code = _STATUS_CODES.get(err.status_code, "error")
    return _json(ApiError(err.status_code, code, str(err.detail)))


async def _invalid(_: Request, err: Exception) -> Response:
    assert isinstance(err, RequestValidationError)
    first = err.errors()[0] if err.errors() else {}
    location = [str(part) for part in first.get("loc", ())]
    field = location[-1] if location else None
    return _json(ApiError(400, "invalid_request", str(first.get("msg", "invalid")), field=field))


async def _failed(_: Request, err: Exception) -> Response:
    """A bug: 500 in the one shape (uvicorn logs the traceback), naming nothing of the request."""
    message = "the server failed; repeating the request with the same Idempotency-Key is safe"
    return _json(ApiError(500, "internal_error", message))


async def _unavailable(request: Request, err: Exception) -> Response:
    service = "the broker" if getattr(err, "service", "redis") == "broker" else "Redis"
    if request.url.path.startswith("/console"):
        return unavailable_page(service)
    return _json(unavailable(service))
