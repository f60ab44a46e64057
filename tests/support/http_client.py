"""The HTTP front door in a test: the app on this process's runtime, and tokens to call it with."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi.testclient import TestClient

from tasks.http.app import create_app
from tasks.http.services import current_services
from tasks.http.tokens import NewToken, Scope


@contextmanager
def api_client(base_url: str = "http://testserver") -> Iterator[TestClient]:
    """A client of the app (no callback dispatcher: tests run it themselves)."""
    with TestClient(create_app(), base_url=base_url, follow_redirects=False) as client:
        yield client


def new_token(name: str, scope: str, *, daily_cap: int | None = None) -> NewToken:
    """A token made as ``engage-sms tokens create`` makes it."""
    return current_services().tokens.create(name, Scope(scope), daily_cap=daily_cap)


def bearer(token: NewToken, key: str | None = None) -> dict[str, str]:
    """The headers of a request by ``token``, with an Idempotency-Key if given."""
    headers = {"Authorization": f"Bearer {token.text}"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return headers
