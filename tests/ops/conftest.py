"""Fixtures of the operations tests: real Redis when a test needs it (fails in CI, else skips)."""

from __future__ import annotations

import pytest

from tests.support.environments import TEST_REDIS_URL
from tests.support.real_redis import require_redis


@pytest.fixture
def redis_url() -> str:
    """The test suite's Redis database; skipped locally when Redis is down, failed in CI."""
    require_redis(TEST_REDIS_URL)
    return TEST_REDIS_URL
