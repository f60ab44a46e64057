"""The dead-letter store at its size bound: entries leave the listing, never without a way back."""

from __future__ import annotations

import pytest
import redis

from tasks.api import delivery_status, replay_dead_letter, send_prepared_sms
from tasks.cli.local_stack import ManagedProcess
from tasks.delivery.runtime import current_runtime
from tasks.sandbox import Sandbox
from tasks.worker.app import engage_settings
from tests.integration.conftest import WorkerFactory, wait_for

pytestmark = pytest.mark.integration

MESSAGE_ID = 23541
BOUND = 3
SENDS = 6
#: External ids the sandbox does not know yet: each send is dead-lettered unknown_recipient.
STRANGERS = [f"stranger-{n}" for n in range(SENDS)]


def test_entries_over_the_bound_stay_replayable_and_are_logged(
    start_workers: WorkerFactory, sandbox: Sandbox, redis_db: redis.Redis
) -> None:
    """Six dead letters into a store of three: three listed, three logged, all six replayable."""
    worker: ManagedProcess = start_workers(
        sandbox.base_url, ENGAGE_DLQ_MAX_ENTRIES=str(BOUND), ENGAGE_UNKNOWN_RECIPIENT_RETRIES="0"
    )
    keys = [f"dl-{n}" for n in range(SENDS)]
    for key, stranger in zip(keys, STRANGERS, strict=True):
        send_prepared_sms(MESSAGE_ID, external_id=stranger, idempotency_key=key)
        # One at a time: which ones are oldest is then known.
        wait_for(lambda: delivery_status(key)["state"] == "dead_lettered", what=key)  # noqa: B023
    store = current_runtime(engage_settings()).dead_letters
    assert sorted(store.keys()) == keys[SENDS - BOUND :]
    assert store.over_bound() == keys[: SENDS - BOUND]
    for key in keys[: SENDS - BOUND]:
        assert f"the entry of {key} left the listing" in worker.log_text()
    sandbox.state.add_contacts(
        {"type": "EXTERNAL", "value": s, "contactId": 74_000 + n} for n, s in enumerate(STRANGERS)
    )
    assert [replay_dead_letter(k) for k in keys] == ["requeued"] * SENDS
    wait_for(
        lambda: all(delivery_status(k)["state"] == "sent" for k in keys),
        what="every replayed send sent",
    )
    assert store.over_bound() == []
    assert len(sandbox.state.calls_to("message/sendSingle")) == SENDS
