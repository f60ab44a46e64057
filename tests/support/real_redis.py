"""The local Redis server: tests that need it skip when it is missing, and fail in CI."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis

from tasks.cli.local_stack import redis_answers


def require_redis(url: str) -> None:
    """Skip the test when no Redis answers at ``url``; fail it in CI, where Redis must run."""
    if not redis_answers(url):
        message = f"Redis does not answer at {url}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


@contextmanager
def connected(url: str) -> Iterator[redis.Redis]:
    """A client of the Redis at ``url`` (required as above), closed afterwards."""
    require_redis(url)
    client = redis.Redis.from_url(url, socket_connect_timeout=1)
    try:
        yield client
    finally:
        client.close()


def unique_prefix(name: str) -> str:
    """A key prefix no other test uses (for ENGAGE_KEY_PREFIX in a shared database)."""
    return f"test-{name}-{uuid.uuid4().hex[:12]}"


def delete_prefix(client: redis.Redis, prefix: str) -> int:
    """Delete every key under ``prefix:``; the number deleted."""
    keys = list(client.scan_iter(match=f"{prefix}:*", count=500))
    return int(client.delete(*keys)) if keys else 0
