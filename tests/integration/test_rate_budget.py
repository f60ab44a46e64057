"""The Engage budget is one fact in Redis, agreed by real workers at their start."""

from __future__ import annotations

import pytest
import redis

from tasks.sandbox import Sandbox
from tasks.state.keys import RedisKeys
from tests.integration.conftest import WorkerFactory

pytestmark = pytest.mark.integration


def test_a_worker_with_another_budget_keeps_the_stored_one_and_says_so(
    start_workers: WorkerFactory, sandbox: Sandbox, redis_db: redis.Redis
) -> None:
    """A worker with 10/s stores the budget; one with 40/s keeps 10/s and logs the mismatch."""
    start_workers(sandbox.base_url, name="ten", ENGAGE_RATE_LIMIT="10")
    forty = start_workers(sandbox.base_url, name="forty", ENGAGE_RATE_LIMIT="40")
    budget = RedisKeys("engage").rate_budget
    assert redis_db.hget(budget, "rate") == b"10.0"
    forty.wait_for_log("ENGAGE RATE BUDGET MISMATCH", 10)
    [line] = [line for line in forty.log_text().splitlines() if "MISMATCH" in line]
    assert "40/s (burst 1)" in line
    assert "keeps to 10/s (burst 1)" in line
