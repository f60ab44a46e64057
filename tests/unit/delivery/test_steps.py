"""The two steps of a send against the sandbox, with state on fakeredis."""

from __future__ import annotations

import dataclasses
import time

import fakeredis
import pytest

from tasks.core.errors import EngageServerError
from tasks.core.request import SendRequest, build_send_request
from tasks.core.send_options import Priority
from tasks.delivery import steps as delivery
from tasks.delivery.context import SendMeta
from tasks.delivery.outcomes import Busy, DeadLetter, Resolved, Retry, Sent, Stopped
from tasks.delivery.runtime import Runtime
from tasks.delivery.steps import StepContext
from tasks.sandbox import Sandbox
from tasks.state.enums import Reason, SendState
from tests.support.environments import make_settings
from tests.support.runtime import fake_runtime

REQUEST = build_send_request(23541, mobile="+48505606707", parameters={"firstName": "Ann"})


def ctx(retries: int = 0, task_id: str = "s1") -> StepContext:
    """A step context for key k1."""
    return StepContext(key="k1", task_id=task_id, retries=retries, task_ids=["r1", "s1"])


def claimed(runtime: Runtime, request: SendRequest = REQUEST) -> Runtime:
    """The runtime with k1 claimed for ``request``."""
    runtime.ledger.claim("k1", request, ["r1", "s1"])
    return runtime


def test_resolve_then_send_sends_once_with_exact_calls(runtime: Runtime, sandbox: Sandbox) -> None:
    """The happy path: one lookup, one send, state sent."""
    rt = claimed(runtime)
    assert delivery.resolve(rt, REQUEST, ctx()) == Resolved(33457)
    assert delivery.send(rt, REQUEST, 33457, ctx()) == Sent(callback=None)
    assert [c.body for c in sandbox.state.calls_to("contact/get")] == [
        {"type": "MOBILE", "value": "48505606707"}
    ]
    (call,) = sandbox.state.calls_to("message/sendSingle")
    assert call.query == {"messageId": "23541", "recipientId": "33457"}
    assert call.body == {"parameters": [{"name": "firstName", "value": "Ann"}]}
    assert rt.ledger.state("k1") == "sent"


def test_a_second_delivery_after_sent_does_nothing(runtime: Runtime, sandbox: Sandbox) -> None:
    """Redelivered or repeated steps see sent and make no call."""
    rt = claimed(runtime)
    delivery.send(rt, REQUEST, 33457, ctx())
    assert delivery.resolve(rt, REQUEST, ctx(task_id="again")) == Stopped(SendState.SENT)
    assert delivery.send(rt, REQUEST, 33457, ctx(task_id="again")) == Stopped(SendState.SENT)
    assert len(sandbox.state.calls_to("message/sendSingle")) == 1
    assert len(sandbox.state.calls_to("contact/get")) == 0


def test_503_asks_for_a_retry_and_releases_the_lease(runtime: Runtime, sandbox: Sandbox) -> None:
    """A 5xx on send means retry later; the ledger shows retrying."""
    rt = claimed(runtime)
    sandbox.state.set_faults({"script": {"message/sendSingle": [503]}})
    outcome = delivery.send(rt, REQUEST, 33457, ctx())
    assert isinstance(outcome, Retry)
    assert 0.1 <= outcome.delay <= 0.12
    assert isinstance(outcome.error, EngageServerError)
    assert outcome.error.status == 503
    assert rt.ledger.state("k1") == "retrying"
    assert delivery.send(rt, REQUEST, 33457, ctx(retries=1)) == Sent(callback=None)
    assert sandbox.state.sends[(23541, 33457)] == 1


def test_unknown_recipient_retries_then_dead_letters(runtime: Runtime, sandbox: Sandbox) -> None:
    """Two short retries of the lookup, then dead-lettered unknown_recipient; no send."""
    request = build_send_request(23541, mobile="+48600000001")
    rt = claimed(runtime, request)
    for retries in (0, 1):
        assert isinstance(delivery.resolve(rt, request, ctx(retries)), Retry)
    outcome = delivery.resolve(rt, request, ctx(2))
    assert isinstance(outcome, DeadLetter)
    assert outcome.reason == Reason.UNKNOWN_RECIPIENT
    assert rt.ledger.state("k1") == "dead_lettered"
    entry = rt.dead_letters.get("k1")
    assert entry is not None
    assert entry["error"]["errorCode"] == "NO_SUCH_OBJECT"
    assert sandbox.state.calls_to("message/sendSingle") == []


def test_permanent_rejection_dead_letters_at_once(runtime: Runtime, sandbox: Sandbox) -> None:
    """MISSING_PARAMETER is dead-lettered as rejected, with Engage's error kept."""
    sandbox.state.add_messages([{"messageId": 23541, "requiredParameters": ["code"]}])
    rt = claimed(runtime)
    outcome = delivery.send(rt, REQUEST, 33457, ctx())
    assert isinstance(outcome, DeadLetter)
    assert outcome.reason == Reason.REJECTED
    entry = rt.dead_letters.get("k1")
    assert entry is not None
    assert entry["error"]["parameterName"] == "code"


def test_unknown_outcome_is_dead_lettered_not_resent(runtime: Runtime, sandbox: Sandbox) -> None:
    """A dropped answer after the send left: outcome_unknown, and no second call."""
    sandbox.state.set_faults({"script": {"message/sendSingle": ["drop_after"]}})
    rt = claimed(runtime)
    outcome = delivery.send(rt, REQUEST, 33457, ctx())
    assert isinstance(outcome, DeadLetter)
    assert outcome.reason == Reason.OUTCOME_UNKNOWN
    assert delivery.send(rt, REQUEST, 33457, ctx(retries=1)) == Stopped(SendState.DEAD_LETTERED)
    assert len(sandbox.state.calls_to("message/sendSingle")) == 1


def test_same_message_again_within_the_lease_is_busy(runtime: Runtime, sandbox: Sandbox) -> None:
    """The same message delivered again while its lease runs proves no death: nothing is done.

    kombu hands a message out again while its holder still runs (a worker whose clock is ahead
    restores it early); taking that for a dead holder dead-lettered live sends.
    """
    rt = claimed(runtime)
    rt.ledger.begin_send("k1", ctx().owner, 33457)  # a worker holds the lease, still sending
    assert delivery.send(rt, REQUEST, 33457, ctx()) == Busy()
    assert rt.ledger.state("k1") == "sending"
    assert sandbox.state.calls_to("message/sendSingle") == []


def test_worker_death_mid_send_is_outcome_unknown(runtime: Runtime, sandbox: Sandbox) -> None:
    """The same attempt delivered again once its lease lapsed is dead-lettered, never resent."""
    rt = claimed(runtime)
    rt.ledger.begin_send("k1", ctx().owner, 33457)  # a worker took the lease and died
    rt.redis.hset(rt.keys.send("k1"), "lease_until", rt.ledger.now() - 1)
    outcome = delivery.send(rt, REQUEST, 33457, ctx())
    assert isinstance(outcome, DeadLetter)
    assert outcome.reason == Reason.OUTCOME_UNKNOWN
    assert sandbox.state.calls_to("message/sendSingle") == []


def test_wrong_credentials_park_every_send_without_calling(
    runtime: Runtime, sandbox: Sandbox
) -> None:
    """After one 403, further sends are parked as auth_failed without a call."""
    sandbox.state.password = "rotated"
    rt = claimed(runtime)
    first = delivery.resolve(rt, REQUEST, ctx())
    assert isinstance(first, DeadLetter)
    assert first.reason == Reason.AUTH_FAILED
    rt.ledger.claim("k2", REQUEST, ["r2", "s2"])
    second = StepContext(key="k2", task_id="r2", retries=0, task_ids=["r2", "s2"])
    assert delivery.resolve(rt, REQUEST, second) == DeadLetter(
        Reason.AUTH_FAILED, "Engage refused the credentials"
    )
    assert len(sandbox.state.calls) == 1


def test_send_after_credentials_were_refused_is_parked_without_calling(
    runtime: Runtime, sandbox: Sandbox
) -> None:
    """A send resolved before another worker got a 403 is parked auth_failed, lease untaken."""
    rt = claimed(runtime)
    assert delivery.resolve(rt, REQUEST, ctx()) == Resolved(33457)
    rt.auth.trip()
    assert delivery.send(rt, REQUEST, 33457, ctx()) == DeadLetter(
        Reason.AUTH_FAILED, "Engage refused the credentials"
    )
    assert sandbox.state.calls_to("message/sendSingle") == []
    assert rt.ledger.record("k1")["attempts"] == "0"


def test_poison_lookup_stops_after_bounded_redeliveries(runtime: Runtime, sandbox: Sandbox) -> None:
    """The same lookup attempt delivered too often is dead-lettered worker_lost."""
    rt = claimed(runtime)
    for _ in range(rt.settings.retry.max_redeliveries):
        rt.ledger.count_delivery("k1", f"{ctx().owner}:resolve")
    assert delivery.resolve(rt, REQUEST, ctx()) == DeadLetter(
        Reason.WORKER_LOST, "the lookup killed its worker"
    )
    assert sandbox.state.calls == []


def test_missing_record_is_recreated_from_a_recent_message(
    runtime: Runtime, sandbox: Sandbox
) -> None:
    """A record lost under a task of this deployment queued lately is written again in full."""
    meta = SendMeta("engage", Priority.URGENT, "myapp.done", time.time() - 5)
    step = dataclasses.replace(ctx(), meta=meta)
    assert delivery.resolve(runtime, REQUEST, step) == Resolved(33457)
    record = runtime.ledger.record("k1")
    assert (record["state"], record["priority"], record["on_done"]) == (
        "queued",
        "urgent",
        "myapp.done",
    )
    assert delivery.send(runtime, REQUEST, 33457, step) == Sent(callback="myapp.done")


@pytest.mark.parametrize("age", [None, 10 * 86400.0])
def test_missing_record_is_not_sent_blindly(
    runtime: Runtime, sandbox: Sandbox, age: float | None
) -> None:
    """Without meta, or older than the record retention, a missing record means record_missing."""
    meta = None if age is None else SendMeta("engage", Priority.NORMAL, None, time.time() - age)
    outcome = delivery.resolve(runtime, REQUEST, dataclasses.replace(ctx(), meta=meta))
    assert isinstance(outcome, DeadLetter)
    assert outcome.reason == Reason.RECORD_MISSING
    assert runtime.ledger.status("k1")["state"] == "dead_lettered"
    assert sandbox.state.calls == []


def test_repeat_recipient_is_looked_up_once(runtime: Runtime, sandbox: Sandbox) -> None:
    """The contact-id cache saves the second lookup of the same number."""
    rt = claimed(runtime)
    rt.ledger.claim("k2", REQUEST, ["r2", "s2"])
    other = StepContext(key="k2", task_id="r2", retries=0, task_ids=["r2", "s2"])
    assert delivery.resolve(rt, REQUEST, ctx()) == Resolved(33457)
    assert delivery.resolve(rt, REQUEST, other) == Resolved(33457)
    assert len(sandbox.state.calls_to("contact/get")) == 1


def test_unknown_recipient_on_send_drops_the_cached_id(runtime: Runtime, sandbox: Sandbox) -> None:
    """A cached id Engage no longer knows is forgotten, so the next send looks it up again."""
    rt = claimed(runtime)
    rt.contacts.put("MOBILE", "48505606707", 424242)
    assert delivery.resolve(rt, REQUEST, ctx()) == Resolved(424242)
    outcome = delivery.send(rt, REQUEST, 424242, ctx())
    assert isinstance(outcome, DeadLetter)
    assert outcome.reason == Reason.UNKNOWN_RECIPIENT
    assert rt.contacts.get("MOBILE", "48505606707") is None


def test_known_contact_id_makes_no_lookup(runtime: Runtime, sandbox: Sandbox) -> None:
    """recipient_id sends go straight to sendSingle."""
    request = build_send_request(23541, recipient_id=33457)
    rt = claimed(runtime, request)
    assert delivery.resolve(rt, request, ctx()) == Resolved(33457)
    assert sandbox.state.calls == []


def test_no_rate_slot_within_max_wait_hands_the_task_back(
    sandbox: Sandbox, fake_redis: fakeredis.FakeRedis
) -> None:
    """With the budget spent, the step asks for a later retry and calls nobody."""
    settings = make_settings(sandbox.base_url, ENGAGE_RATE_LIMIT="0.5", ENGAGE_RATE_MAX_WAIT="0")
    rt = claimed(fake_runtime(settings, redis_client=fake_redis))
    assert delivery.resolve(rt, REQUEST, ctx()) == Resolved(33457)
    rt.contacts.invalidate("MOBILE", "48505606707")
    outcome = delivery.resolve(rt, REQUEST, ctx(retries=1))
    assert isinstance(outcome, Retry)
    assert outcome.error is None
    assert 0.1 <= outcome.delay <= 1.0
    assert len(sandbox.state.calls) == 1
    assert rt.ledger.record("k1").get("failures:resolve") is None


def test_time_in_the_queue_does_not_use_up_the_retry_budget(
    runtime: Runtime, sandbox: Sandbox, fake_redis: fakeredis.FakeRedis
) -> None:
    """A send enqueued long ago still gets its retries: the budget runs from the first failure."""
    rt = claimed(runtime)
    fake_redis.hset("engage:send:k1", "created_at", "1000000000.0")  # enqueued in 2001
    sandbox.state.set_faults({"script": {"message/sendSingle": [503]}})
    assert isinstance(delivery.send(rt, REQUEST, 33457, ctx()), Retry)
