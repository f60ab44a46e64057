"""The enqueue API: validation first, one claim, one publish, nothing half-done."""

from __future__ import annotations

import pytest

import tasks.api
from tasks.api import delivery_status, send_prepared_sms
from tasks.core.errors import IdempotencyConflict, InvalidSendRequest, ServiceUnavailable
from tasks.core.request import build_send_request
from tasks.delivery.runtime import Runtime
from tasks.state.enums import Reason
from tests.support.broker import Broker


def test_send_claims_and_publishes_once(runtime: Runtime, broker: Broker) -> None:
    """A new send is queued and published with its two task ids."""
    handle = send_prepared_sms(23541, mobile="+48 505 606 707", idempotency_key="order-1")
    assert (handle.key, handle.state, handle.created) == ("order-1", "queued", True)
    ((request, key, task_ids),) = broker.published
    assert request == build_send_request(23541, mobile="+48505606707")
    assert (key, task_ids[-1]) == ("order-1", handle.task_id)
    assert delivery_status("order-1")["state"] == "queued"


def test_one_message_carries_the_whole_chain(runtime: Runtime, broker: Broker) -> None:
    """resolve_contact is published under the first id with send_single chained under the second."""
    handle = send_prepared_sms(23541, mobile="+48505606707", idempotency_key="order-1")
    (message,) = broker.messages
    data = {
        "message_id": 23541,
        "identifier": {"type": "MOBILE", "value": "48505606707"},
        "parameters": [],
    }
    first_id = message.args[2][0]
    assert (message.task, message.task_id) == ("engage.resolve_contact", first_id)
    assert message.args == [data, "order-1", [first_id, handle.task_id]]
    (then,) = message.chain
    assert (then["task"], then["options"]["task_id"]) == ("engage.send_single", handle.task_id)
    assert then["args"] == message.args


def test_published_arguments_are_masked_for_flower(runtime: Runtime, broker: Broker) -> None:
    """The message's argsrepr shows the masked number and parameter names, never their values."""
    send_prepared_sms(
        23541, mobile="+48505606707", parameters={"code": "918273"}, idempotency_key="order-1"
    )
    (message,) = broker.messages
    shown = message.headers["argsrepr"] + message.headers["kwargsrepr"]
    assert "48*******07" in shown
    assert "'code'" in shown
    assert "48505606707" not in shown
    assert "918273" not in shown


def test_same_key_twice_publishes_once_and_returns_the_same_handle(
    runtime: Runtime, broker: Broker
) -> None:
    """A repeated enqueue returns the first task id and publishes nothing."""
    first = send_prepared_sms(23541, mobile="+48505606707", idempotency_key="order-1")
    second = send_prepared_sms(23541, mobile="+48 505 606 707", idempotency_key="order-1")
    assert second.task_id == first.task_id
    assert not second.created
    assert len(broker.published) == 1


def test_without_a_key_each_call_is_a_new_send(runtime: Runtime, broker: Broker) -> None:
    """No key: a fresh auto: key per call, like a new Celery task (give a key to dedupe)."""
    first = send_prepared_sms(23541, mobile="+48505606707", parameters={"a": "1"})
    second = send_prepared_sms(23541, mobile="+48505606707", parameters={"a": "1"})
    assert first.key != second.key
    assert first.key.startswith("auto:")
    assert second.key.startswith("auto:")
    assert len(broker.published) == 2


def test_same_key_different_request_is_a_conflict(runtime: Runtime, broker: Broker) -> None:
    """Reusing a key for another request raises and enqueues nothing."""
    send_prepared_sms(23541, mobile="+48505606707", idempotency_key="order-1")
    with pytest.raises(IdempotencyConflict, match="order-1"):
        send_prepared_sms(23541, mobile="+48505606708", idempotency_key="order-1")
    assert len(broker.published) == 1


def test_invalid_input_enqueues_nothing(runtime: Runtime, broker: Broker) -> None:
    """Bad input raises before any Redis write or publish."""
    with pytest.raises(InvalidSendRequest, match="mobile"):
        send_prepared_sms(23541, mobile="not a number", idempotency_key="order-1")
    assert broker.published == []
    assert delivery_status("order-1")["state"] == "unknown"


def test_failed_publish_leaves_no_claim(runtime: Runtime, broker: Broker) -> None:
    """If the broker refuses, the claim is undone so a retry of the enqueue works."""
    with broker.unreachable(), pytest.raises(ServiceUnavailable):
        send_prepared_sms(23541, mobile="+48505606707", idempotency_key="order-1")
    assert delivery_status("order-1")["state"] == "unknown"
    assert send_prepared_sms(23541, mobile="+48505606707", idempotency_key="order-1").created
    assert [key for _, key, _ in broker.published] == ["order-1"]


def test_replay_of_a_dead_letter_publishes_under_the_same_key(
    runtime: Runtime, broker: Broker
) -> None:
    """A replay re-enters the chain with new task ids and the same key."""
    handle = send_prepared_sms(23541, mobile="+48505606707", idempotency_key="order-1")
    runtime.dead_letters.add(
        "order-1", reason=Reason.UNKNOWN_RECIPIENT, detail="d", error=None, task_ids=[]
    )
    assert tasks.api.replay_dead_letter("order-1") == "requeued"
    assert [p[1] for p in broker.published] == ["order-1", "order-1"]
    assert broker.published[1][2][-1] != handle.task_id
    assert delivery_status("order-1")["state"] == "queued"


def test_replay_never_resends_a_sent_message(runtime: Runtime, broker: Broker) -> None:
    """A key that was sent meanwhile is reported sent and not published."""
    send_prepared_sms(23541, mobile="+48505606707", idempotency_key="order-1")
    runtime.dead_letters.add(
        "order-1", reason=Reason.OUTCOME_UNKNOWN, detail="d", error=None, task_ids=[]
    )
    runtime.ledger.mark_sent("order-1")  # the answer arrived late: it was sent
    assert tasks.api.replay_dead_letter("order-1") == "missing"
    assert len(broker.published) == 1


def test_replay_the_broker_refuses_stays_a_dead_letter(runtime: Runtime, broker: Broker) -> None:
    """A replay whose publish fails raises and leaves the entry in the dead-letter store."""
    send_prepared_sms(23541, mobile="+48505606707", idempotency_key="order-1")
    runtime.dead_letters.add(
        "order-1", reason=Reason.UNKNOWN_RECIPIENT, detail="d", error=None, task_ids=[]
    )
    with broker.unreachable(), pytest.raises(ServiceUnavailable):
        tasks.api.replay_dead_letter("order-1")
    entry = runtime.dead_letters.get("order-1")
    assert entry is not None
    assert entry["reason"] == "unknown_recipient"
    assert delivery_status("order-1")["state"] == "dead_lettered"
    assert len(broker.published) == 1
