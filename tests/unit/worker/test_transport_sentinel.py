"""Our kombu transport on Sentinel: a closed channel, and kombu's reconnect by URL scheme."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import redis

from tasks.worker.transport import SentinelChannel


def test_a_channel_closed_after_its_connection_raises_a_connection_error() -> None:
    """No pool and no connection left: a connection error kombu ignores, not an AttributeError."""
    channel = SentinelChannel.__new__(SentinelChannel)
    channel._pool = None
    channel.connection = SimpleNamespace(client=None)
    with pytest.raises(redis.ConnectionError), channel.conn_or_acquire():
        pass
