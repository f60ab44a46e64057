"""Fixtures of the operations tests: real Redis when a test needs it (fails in CI, else skips)."""

from __future__ import annotations

import os

import pytest

from tasks.local_stack import redis_answers
from tests.conftest import TEST_REDIS_URL


@pytest.fixture
def redis_url() -> str:
    """The test suite's Redis database; skipped locally when Redis is down, failed in CI."""
    if not redis_answers(TEST_REDIS_URL):
        message = f"Redis does not answer at {TEST_REDIS_URL}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return TEST_REDIS_URL
