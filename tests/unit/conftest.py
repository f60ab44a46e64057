"""Unit tests run in this process on fakes: fakeredis, the sandbox, kombu's memory broker."""

from __future__ import annotations

import pytest

from tests.support.broker import Broker


@pytest.fixture(autouse=True)
def _publish_to_memory(broker: Broker) -> None:
    """Whatever a unit test publishes stays in this process: never in a Redis broker."""
