"""Every Engage call has a total deadline shorter than its lease: a trickled answer is cut."""

from __future__ import annotations

import time

import pytest
import redis

from tasks.api import delivery_status, send_prepared_sms
from tasks.core.errors import OutcomeUnknown
from tasks.engage.http import make_session, post
from tasks.sandbox import Sandbox
from tests.integration.conftest import WorkerFactory, wait_for
from tests.support.environments import SANDBOX_PASSWORD, SANDBOX_USER

pytestmark = pytest.mark.integration


def test_a_trickled_answer_is_cut_at_the_deadline(sandbox: Sandbox) -> None:
    """One byte every 0.5 s never trips a 1 s read timeout; the 2 s deadline cuts it."""
    sandbox.state.set_faults({"script": {"message/sendSingle": ["trickle:0.5"]}})
    session = make_session(SANDBOX_USER, SANDBOX_PASSWORD, base_url=sandbox.base_url)
    started = time.monotonic()
    with pytest.raises(OutcomeUnknown, match="deadline of 2 s"):
        post(
            session,
            f"{sandbox.base_url}/message/sendSingle?messageId=23541&recipientId=33457",
            "message/sendSingle",
            timeout=(1.0, 1.0),
            json={"parameters": []},
        )
    # Cut at the deadline, well before the lease (deadline + ENGAGE_LEASE_MARGIN) would lapse.
    assert time.monotonic() - started < 3.0
    assert [c.status for c in sandbox.state.calls] == ["trickle"]


def test_a_send_whose_answer_trickles_ends_before_its_lease(
    start_workers: WorkerFactory, sandbox: Sandbox, redis_db: redis.Redis
) -> None:
    """The worker cuts the call at its deadline (3 s) and dead-letters it outcome_unknown itself,
    before the lease (4 s) could lapse and the sweep take a live call for a dead one."""
    sandbox.state.set_faults({"script": {"message/sendSingle": ["trickle:1"]}})
    start_workers(sandbox.base_url, ENGAGE_SWEEP_INTERVAL="1")
    send_prepared_sms(23541, mobile="+48505606707", idempotency_key="trickle-1")
    status = wait_for(
        lambda: (s := delivery_status("trickle-1"))["state"] == "dead_lettered" and s,
        timeout=30,
        what="the send to end",
    )
    assert status["reason"] == "outcome_unknown"
    assert "deadline of 3 s" in status["detail"]
    assert len(sandbox.state.calls_to("message/sendSingle")) == 1
