"""Unit tests run in this process on fakes: fakeredis, the sandbox, kombu's memory broker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tasks.delivery.runtime import Runtime
from tasks.http.tokens import NewToken
from tests.support.broker import Broker
from tests.support.http_client import api_client, new_token
from tests.support.virtual_clock import VirtualClock, drive_fakeredis


@pytest.fixture(autouse=True)
def _publish_to_memory(broker: Broker) -> None:
    """Whatever a unit test publishes stays in this process: never in a Redis broker."""


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> VirtualClock:
    """fakeredis' TIME and key expiry on a clock the test moves (and code under test sleeps on)."""
    fake = VirtualClock()
    drive_fakeredis(monkeypatch, fake)
    return fake


@pytest.fixture
def client(runtime: Runtime, broker: Broker) -> Iterator[TestClient]:
    """The HTTP app on the fakeredis runtime and the memory broker (the Engage client tests
    define a ``client`` of their own)."""
    with api_client() as client:
        yield client


@pytest.fixture
def sender(client: TestClient) -> NewToken:
    """A token of scope send on the HTTP app."""
    return new_token("shop", "send")
