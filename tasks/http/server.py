"""``engage-sms api``: the application on uvicorn, the callback dispatcher running beside it."""

from __future__ import annotations

from collections.abc import Callable

import requests
import uvicorn

from tasks.http.app import create_app
from tasks.http.callbacks import CallbackDispatcher, DispatcherThread, post_with
from tasks.http.services import current_services


def start_callbacks() -> Callable[[], None]:
    """Start this process's callback dispatcher; the function that stops it."""
    s = current_services()
    dispatcher = CallbackDispatcher(
        s.runtime.redis,
        keys=s.keys,
        ledger=s.runtime.ledger,
        owners=s.owners,
        tokens=s.tokens,
        post=post_with(requests.Session()),
    )
    thread = DispatcherThread(dispatcher)
    thread.start()
    return thread.stop


def serve(host: str, port: int, *, proxy_headers: bool = False) -> None:
    """Serve the API and console until interrupted (uvicorn handles SIGINT and SIGTERM)."""
    app = create_app(on_start=start_callbacks)
    uvicorn.run(
        app,
        host=host,
        port=port,
        proxy_headers=proxy_headers,
        forwarded_allow_ips="127.0.0.1" if proxy_headers else None,
        server_header=False,
        access_log=False,
        log_level="info",
    )
