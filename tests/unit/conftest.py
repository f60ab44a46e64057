"""Unit tests run in this process on fakes: fakeredis, the sandbox, kombu's memory broker."""

from __future__ import annotations

import pytest

from tests.support.broker import Broker
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
