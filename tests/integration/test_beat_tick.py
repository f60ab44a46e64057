"""A beat tick that waits in a backlog still sends its own run, not the next one's."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis

from tasks.sandbox import Sandbox
from tasks.state.records import text
from tasks.worker.schedules import TICK_HEADER, dispatch_schedule
from tests.integration.conftest import WorkerFactory, wait_for

pytestmark = pytest.mark.integration

EVERY = 60
RECIPIENTS = (75_001, 75_002)
SCHEDULE = f"""
[[schedule]]
name = "minutely"
every = {EVERY}
message_id = 23541
recipients = [{{ recipient_id = {RECIPIENTS[0]} }}, {{ recipient_id = {RECIPIENTS[1]} }}]
"""


def beat_tick(at: float) -> None:
    """Publish the schedule's dispatch as beat does, stamped as published at ``at``."""
    stamp = datetime.fromtimestamp(at, UTC).isoformat()
    dispatch_schedule.apply_async(("minutely",), headers={TICK_HEADER: stamp})


def test_a_tick_delivered_after_its_interval_sends_its_own_run(
    start_workers: WorkerFactory, sandbox: Sandbox, redis_db: redis.Redis, tmp_path: Path
) -> None:
    """A tick of two runs ago, delivered late, then this run's tick: both runs are sent."""
    schedule_file = tmp_path / "schedules.toml"
    schedule_file.write_text(SCHEDULE)
    now = time.time()
    this_run = now - now % EVERY
    current = this_run + 1  # beat ticks just after each boundary
    late = this_run - 2 * EVERY + 1  # beat ticked then; a backlog held the message since
    beat_tick(late)
    beat_tick(current)
    start_workers(sandbox.base_url, ENGAGE_SCHEDULE_FILE=str(schedule_file))
    sends = wait_for(
        lambda: len(calls := sandbox.state.calls_to("message/sendSingle")) >= 4 and calls,
        timeout=30,
        what="two runs of two sends",
    )
    keys = {text(k) for k in redis_db.keys("engage:send:beat:minutely:*")}
    stamps = {key.split(":")[4] for key in keys}
    expected = {
        datetime.fromtimestamp(t - t % EVERY, UTC).strftime("%Y%m%dT%H%M%SZ")
        for t in (late, current)
    }
    assert stamps == expected
    assert sorted(int(c.query["recipientId"]) for c in sends) == sorted(RECIPIENTS * 2)
