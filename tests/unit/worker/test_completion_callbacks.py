"""Completion callbacks: filed with the final state, published after it, at least once."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

import tasks.api
from tasks.api import delivery_status, send_prepared_sms
from tasks.core.errors import ConfigurationError, InvalidSendRequest
from tasks.core.request import build_send_request
from tasks.core.send_options import Priority
from tasks.core.settings import load_settings
from tasks.delivery import metrics
from tasks.delivery import steps as delivery
from tasks.delivery.outcomes import Sent
from tasks.delivery.runtime import Runtime
from tasks.delivery.steps import StepContext
from tasks.sandbox import Sandbox
from tasks.state.enums import Reason
from tasks.worker import completion_callbacks
from tasks.worker.app import app
from tasks.worker.housekeeping import sweep
from tests.support.broker import Broker
from tests.support.environments import make_settings
from tests.support.runtime import fake_runtime, installed

TASK = "myapp.tasks.sms_finished"
REQUEST = build_send_request(23541, mobile="+48505606707")
#: The deployment's callback queue: where callbacks go unless ENGAGE_ON_DONE_QUEUE says otherwise.
CALLBACK_QUEUE = "engage.callbacks"


def drain(queue: str) -> list[tuple[str, list[Any]]]:
    """Every message in ``queue`` of the memory broker, as (task name, args), and remove them."""
    found: list[tuple[str, list[Any]]] = []
    with app.connection_for_read() as connection:
        simple = connection.SimpleQueue(queue, no_ack=True, accept=["json"])
        try:
            while True:
                try:
                    message = simple.get_nowait()
                except simple.Empty:
                    return found
                found.append((message.headers["task"], message.payload[0]))
        finally:
            simple.close()


Published = Callable[[], list[tuple[str, list[Any]]]]


@pytest.fixture
def published(broker: Broker) -> Iterator[Published]:
    """Reads the callbacks published so far during the test: (task name, args), oldest first."""
    drain(CALLBACK_QUEUE)
    seen: list[tuple[str, list[Any]]] = []

    def read() -> list[tuple[str, list[Any]]]:
        seen.extend(drain(CALLBACK_QUEUE))
        return list(seen)

    yield read
    drain(CALLBACK_QUEUE)


def ctx() -> StepContext:
    """The send step's context for key k1."""
    return StepContext(key="k1", task_id="s1", retries=0, task_ids=["r1", "s1"])


def claimed(rt: Runtime, on_done: str | None = TASK) -> Runtime:
    """The runtime with k1 queued, naming ``on_done``."""
    rt.ledger.claim("k1", REQUEST, ["r1", "s1"], on_done=on_done)
    return rt


def test_no_callback_is_published_before_the_final_state(
    runtime: Runtime, published: Published
) -> None:
    """A queued send with a callback has none due: nothing is published yet."""
    rt = claimed(runtime)
    assert completion_callbacks.publish_due(rt, "k1") is False
    assert published() == []


def test_callback_is_published_once_the_send_is_recorded_sent(
    runtime: Runtime, sandbox: Sandbox, published: Published
) -> None:
    """After sent, the named task is published once with the masked sent status."""
    rt = claimed(runtime)
    assert delivery.send(rt, REQUEST, 33457, ctx()) == Sent(callback=TASK)
    assert completion_callbacks.publish_due(rt, "k1") is True
    assert completion_callbacks.publish_due(rt, "k1") is False
    ((task, (status,)),) = published()
    assert task == TASK
    assert (status["key"], status["state"], status["recipient"]) == (
        "k1",
        "sent",
        "MOBILE:48*******07",
    )
    assert status == delivery_status("k1")


def test_callback_is_published_after_a_dead_letter(runtime: Runtime, published: Published) -> None:
    """A dead-lettered send's callback carries the dead_lettered status and its reason."""
    rt = claimed(runtime)
    rt.dead_letters.add("k1", reason=Reason.REJECTED, detail="d", error=None, task_ids=["r1"])
    assert completion_callbacks.publish_due(rt, "k1") is True
    ((_, (status,)),) = published()
    assert (status["state"], status["reason"]) == ("dead_lettered", "rejected")


def test_callback_is_published_again_after_a_replay_ends(
    runtime: Runtime, sandbox: Sandbox, broker: Broker, published: Published
) -> None:
    """Dead-lettered, replayed, then sent: a second callback, with the sent status."""
    send_prepared_sms(23541, mobile="+48505606707", idempotency_key="k1", on_done=TASK)
    runtime.dead_letters.add("k1", reason=Reason.AUTH_FAILED, detail="d", error=None, task_ids=[])
    completion_callbacks.publish_due(runtime, "k1")
    assert tasks.api.replay_dead_letter("k1") == "requeued"
    delivery.send(runtime, REQUEST, 33457, ctx())
    assert completion_callbacks.publish_due(runtime, "k1") is True
    assert [status["state"] for _, (status,) in published()] == ["dead_lettered", "sent"]


def test_no_callback_when_none_is_configured(
    runtime: Runtime, sandbox: Sandbox, published: Published
) -> None:
    """A send without on_done (and no ENGAGE_ON_DONE_TASK) files and publishes nothing."""
    rt = claimed(runtime, on_done=None)
    delivery.send(rt, REQUEST, 33457, ctx())
    assert rt.callbacks.depth() == 0
    assert completion_callbacks.publish_due(rt, "k1") is False
    assert published() == []


def test_application_wide_callback_applies_to_sends_naming_none(
    sandbox: Sandbox, broker: Broker
) -> None:
    """ENGAGE_ON_DONE_TASK is stored in the record of a send that names no on_done."""
    settings = make_settings(sandbox.base_url, ENGAGE_ON_DONE_TASK=TASK)
    with installed(fake_runtime(settings)):
        send_prepared_sms(23541, mobile="+48505606707", idempotency_key="k1")
        assert delivery_status("k1")["on_done"] == TASK


def test_invalid_callback_name_names_the_field_and_enqueues_nothing(
    runtime: Runtime, broker: Broker
) -> None:
    """on_done that is no task name raises InvalidSendRequest('on_done') before any write."""
    with pytest.raises(InvalidSendRequest) as caught:
        send_prepared_sms(23541, mobile="+48505606707", idempotency_key="k1", on_done="a b")
    assert caught.value.field == "on_done"
    assert broker.messages == []


def test_callback_left_by_a_dead_worker_is_published_by_the_sweep(
    runtime: Runtime, sandbox: Sandbox, published: Published
) -> None:
    """A callback still due long after its send was sent (its worker died) goes out on a sweep."""
    rt = claimed(runtime)
    delivery.send(rt, REQUEST, 33457, ctx())  # recorded, never published: the worker "died"
    assert sweep(rt, now=1.0).callbacks == []  # a fresh one is its worker's to publish
    rt.redis.zadd(rt.keys.callbacks, {"k1": 1.0})  # due since long ago
    assert sweep(rt, now=1.0).callbacks == ["k1"]
    assert len(published()) == 1
    assert rt.callbacks.depth() == 0


def test_callback_the_broker_refused_stays_due(
    runtime: Runtime, sandbox: Sandbox, broker: Broker, published: Published
) -> None:
    """A publish that fails leaves the callback due, and the next try publishes it."""
    rt = claimed(runtime)
    delivery.send(rt, REQUEST, 33457, ctx())
    with broker.unreachable():
        assert completion_callbacks.publish_due(rt, "k1") is False
    assert completion_callbacks.publish_due(rt, "k1") is True
    assert len(published()) == 1


def test_callback_of_a_send_replayed_before_it_went_out_is_dropped(
    runtime: Runtime, broker: Broker, published: Published
) -> None:
    """A dead-letter callback not yet out when the send is replayed is superseded, not sent."""
    send_prepared_sms(23541, mobile="+48505606707", idempotency_key="k1", on_done=TASK)
    runtime.dead_letters.add("k1", reason=Reason.AUTH_FAILED, detail="d", error=None, task_ids=[])
    tasks.api.replay_dead_letter("k1")
    assert completion_callbacks.publish_due(runtime, "k1") is False
    assert published() == []
    assert runtime.callbacks.depth() == 0


def test_callback_queue_may_not_be_a_lane() -> None:
    """ENGAGE_ON_DONE_QUEUE naming one of the package's lanes is refused: its workers drop it."""
    with pytest.raises(ConfigurationError, match="ENGAGE_ON_DONE_QUEUE"):
        load_settings({"ENGAGE_ON_DONE_QUEUE": "engage.normal"})


def test_application_wide_callback_must_be_a_task_name() -> None:
    """ENGAGE_ON_DONE_TASK with a space is a configuration error naming the variable."""
    with pytest.raises(ConfigurationError, match="ENGAGE_ON_DONE_TASK"):
        load_settings({"ENGAGE_ON_DONE_TASK": "my task"})


def test_sent_time_is_observed_per_lane(runtime: Runtime, sandbox: Sandbox) -> None:
    """A bulk send accepted by Engage adds one observation to the bulk lane's histogram."""
    runtime.ledger.claim("k1", REQUEST, ["r1", "s1"], priority=Priority.BULK)
    name = "engage_sms_enqueue_to_sent_seconds_count"
    before = metrics.REGISTRY.get_sample_value(name, {"lane": "bulk"}) or 0.0
    delivery.send(runtime, REQUEST, 33457, ctx())
    assert metrics.REGISTRY.get_sample_value(name, {"lane": "bulk"}) == before + 1
