"""Priority lanes and completion callbacks with real workers, real Redis and the sandbox."""

from __future__ import annotations

import json

import pytest
import redis

from tasks.api import delivery_status, send_prepared_sms
from tasks.cli.local_stack import ManagedProcess
from tasks.sandbox import Sandbox
from tests.integration.conftest import WorkerFactory, wait_for
from tests.support import callback_app

pytestmark = pytest.mark.integration

MESSAGE_ID = 23541
#: Contacts known to the sandbox by id: sends to them make one Engage call (no lookup).
BULK_IDS = tuple(range(71_000, 71_030))
URGENT_ID = 72_000


@pytest.fixture
def contacts(sandbox: Sandbox) -> Sandbox:
    """The sandbox knowing the bulk and urgent recipients."""
    sandbox.state.add_contacts(
        {"type": "EXTERNAL", "value": f"lane-{n}", "contactId": n} for n in (*BULK_IDS, URGENT_ID)
    )
    return sandbox


def recipients_sent(sandbox: Sandbox) -> list[int]:
    """The recipient of every sendSingle the sandbox received, in order."""
    return [int(c.query["recipientId"]) for c in sandbox.state.calls_to("message/sendSingle")]


def test_urgent_send_overtakes_a_bulk_backlog(
    start_workers: WorkerFactory, contacts: Sandbox
) -> None:
    """Behind 30 queued bulk sends at 5 calls/s, an urgent send goes before most of them."""
    start_workers(contacts.base_url, ENGAGE_RATE_LIMIT="5")
    for n in BULK_IDS:
        send_prepared_sms(MESSAGE_ID, recipient_id=n, priority="bulk", idempotency_key=f"b{n}")
    wait_for(lambda: len(recipients_sent(contacts)) >= 3, what="the backlog to start draining")
    send_prepared_sms(MESSAGE_ID, recipient_id=URGENT_ID, priority="urgent", idempotency_key="u")
    wait_for(lambda: delivery_status("u")["state"] == "sent", timeout=30, what="the urgent send")
    order = recipients_sent(contacts)
    bulk_before_urgent = order.index(URGENT_ID)
    # In one FIFO queue all 30 would go first; with lanes it waits for a slot or two.
    assert bulk_before_urgent <= len(BULK_IDS) - 20, order


def test_callback_task_receives_the_final_status(
    start_workers: WorkerFactory,
    sandbox: Sandbox,
    redis_db: redis.Redis,
    host_worker: ManagedProcess,
) -> None:
    """A send naming on_done makes the host app's worker run that task with the sent status."""
    start_workers(sandbox.base_url)
    send_prepared_sms(
        MESSAGE_ID, mobile="+48505606707", idempotency_key="cb-1", on_done=callback_app.TASK
    )
    raw = wait_for(lambda: redis_db.lpop(callback_app.RECEIVED), what="the callback task to run")
    status = json.loads(raw)
    assert (status["key"], status["state"]) == ("cb-1", "sent")
    assert status["on_done"] == callback_app.TASK
    assert status["recipient"] == "MOBILE:48*******07"
