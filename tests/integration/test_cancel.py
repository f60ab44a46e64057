"""``cancel``: sends stopped before they start are never sent, whatever copy of them comes later."""

from __future__ import annotations

import json

import pytest
import redis

from tasks.api import cancel_sends, delivery_status, send_prepared_sms
from tasks.cli.local_stack import ManagedProcess
from tasks.core.request import build_send_request
from tasks.core.send_options import Priority
from tasks.sandbox import Sandbox
from tasks.worker.publish import publish
from tests.integration.conftest import WorkerFactory, wait_for
from tests.support import callback_app

pytestmark = pytest.mark.integration

MESSAGE_ID = 23541
BATCH = tuple(range(73_000, 73_040))
FINAL = ("sent", "dead_lettered", "cancelled")


def sent_to(sandbox: Sandbox) -> set[int]:
    """Recipients the sandbox received a send for."""
    return {int(c.query["recipientId"]) for c in sandbox.state.calls_to("message/sendSingle")}


def test_cancelling_a_queued_lane_sends_none_of_the_cancelled(
    start_workers: WorkerFactory,
    sandbox: Sandbox,
    redis_db: redis.Redis,
    host_worker: ManagedProcess,
) -> None:
    """A bulk batch draining at 4 calls/s, cancelled by lane: the cancelled never reach Engage."""
    sandbox.state.add_contacts(
        {"type": "EXTERNAL", "value": f"c-{n}", "contactId": n} for n in BATCH
    )
    start_workers(sandbox.base_url, ENGAGE_RATE_LIMIT="4")
    for n in BATCH:
        send_prepared_sms(
            MESSAGE_ID,
            recipient_id=n,
            priority="bulk",
            idempotency_key=f"batch-{n}",
            on_done=callback_app.TASK,
        )
    wait_for(lambda: sent_to(sandbox), what="the batch to start")
    outcomes = cancel_sends(lane="bulk")
    cancelled = {k for k, o in outcomes.items() if o == "cancelled_now"}
    assert len(cancelled) >= len(BATCH) // 2, outcomes
    # What `celery purge` and the sweep would do next: the same chains published again.
    for key in sorted(cancelled)[:5]:
        n = int(key.split("-")[1])
        record = delivery_status(key)
        request = build_send_request(MESSAGE_ID, recipient_id=n)
        publish(request, key, record["task_ids"], deployment="engage", priority=Priority.BULK)
    wait_for(
        lambda: all(delivery_status(f"batch-{n}")["state"] in FINAL for n in BATCH),
        timeout=60,
        what="every send final",
    )
    wait_for(lambda: redis_db.llen("engage.bulk") == 0, what="the lane drained")
    assert not {int(k.split("-")[1]) for k in cancelled} & sent_to(sandbox)
    assert {delivery_status(k)["state"] for k in cancelled} == {"cancelled"}
    received = wait_for(
        lambda: len(got := redis_db.lrange(callback_app.RECEIVED, 0, -1)) >= len(BATCH) and got,
        what="a callback per send",
    )
    states = {json.loads(r)["key"]: json.loads(r)["state"] for r in received}
    assert {k for k, s in states.items() if s == "cancelled"} == cancelled
    assert cancel_sends(sorted(cancelled)[:1]) == {sorted(cancelled)[0]: "cancelled"}
