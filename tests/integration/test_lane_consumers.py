"""Lanes nobody consumes are named, not silently piled up; every supported pool sends."""

from __future__ import annotations

import time

import pytest
import redis

from tasks.api import delivery_status, send_prepared_sms
from tasks.sandbox import Sandbox
from tests.integration.conftest import WorkerFactory, wait_for

pytestmark = pytest.mark.integration

MESSAGE_ID = 23541
#: WORKER_ENV's visibility timeout, after which the sweep would publish an idle send again.
VISIBILITY_TIMEOUT = 10.0


def test_a_lane_without_a_worker_is_warned_about_and_not_republished(
    start_workers: WorkerFactory, sandbox: Sandbox, redis_db: redis.Redis
) -> None:
    """Only bulk is consumed: the urgent send's lane is named with its -Q, and left as it is."""
    worker = start_workers(sandbox.base_url, queues="engage.bulk", ENGAGE_SWEEP_INTERVAL="1")
    send_prepared_sms(MESSAGE_ID, recipient_id=33457, priority="urgent", idempotency_key="u1")
    enqueued = time.monotonic()
    wait_for(
        lambda: (
            "lane urgent: 1 messages waiting in engage.urgent and no worker consumes it"
            in worker.log_text()
        ),
        what="the warning",
    )
    assert "start one with -Q engage.urgent" in worker.log_text()
    # Past the visibility timeout and a few sweeps: still one copy, and no "republished".
    time.sleep(max(0.0, enqueued + VISIBILITY_TIMEOUT + 3 - time.monotonic()))
    assert redis_db.llen("engage.urgent") == 1
    assert "republished" not in worker.log_text()
    assert delivery_status("u1")["state"] == "queued"


@pytest.mark.parametrize("pool", ["prefork", "threads", "solo"])
def test_each_supported_pool_sends(
    start_workers: WorkerFactory, sandbox: Sandbox, redis_db: redis.Redis, pool: str
) -> None:
    """prefork, threads and solo start, send and record the send."""
    start_workers(sandbox.base_url, pool=pool)
    send_prepared_sms(MESSAGE_ID, mobile="+48505606707", idempotency_key=f"pool-{pool}")
    wait_for(lambda: delivery_status(f"pool-{pool}")["state"] == "sent", what="the send")
    assert len(sandbox.state.calls_to("message/sendSingle")) == 1
