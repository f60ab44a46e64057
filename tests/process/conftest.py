"""Fresh interpreters and commands: what a process reads once (configuration, imports)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.environments import PROCESS_REDIS_URL
from tests.support.real_redis import connected


@pytest.fixture
def process_redis_url() -> Iterator[str]:
    """An empty Redis database for a child process; skips without Redis, fails in CI."""
    with connected(PROCESS_REDIS_URL) as client:
        client.flushdb()
        yield PROCESS_REDIS_URL
        client.flushdb()
