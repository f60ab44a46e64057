"""The sending policy wired into enqueue, the two steps and the sweep (fakeredis, sandbox)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import fakeredis
import pytest

from tasks.api import delivery_status, send_prepared_sms, suppress
from tasks.cli.main import main
from tasks.core.request import Identifier, build_send_request
from tasks.core.send_options import Priority
from tasks.delivery import policy
from tasks.delivery import steps as delivery
from tasks.delivery.outcomes import DeadLetter, Resolved, Retry, Sent, Stopped
from tasks.delivery.runtime import Runtime
from tasks.delivery.steps import StepContext
from tasks.engage import Contact, EngageClient
from tasks.sandbox import Sandbox
from tasks.state.enums import Reason, SendState
from tasks.state.ledger import ClaimPolicy
from tasks.worker.housekeeping import sweep
from tests.support.broker import Broker
from tests.support.environments import make_settings
from tests.support.runtime import fake_runtime, installed
from tests.unit.worker.test_completion_callbacks import CALLBACK_QUEUE, drain

NUMBER = "48505606707"
UNKNOWN = "48600700800"
REQUEST = build_send_request(23541, mobile="+" + NUMBER)
CALLBACK = "app.sms_done"


def ctx(key: str = "k1", lane: Priority = Priority.NORMAL, task_id: str = "s1") -> StepContext:
    """A step context for ``key`` in ``lane``."""
    return StepContext(key=key, task_id=task_id, retries=0, task_ids=["r1", task_id], priority=lane)


@pytest.fixture
def policy_runtime(sandbox: Sandbox) -> Iterator[Runtime]:
    """A runtime talking to the sandbox with a bulk cap of 2 a day, installed for the API."""
    settings = make_settings(sandbox.base_url, ENGAGE_RECIPIENT_CAP="bulk=2/24h")
    with installed(fake_runtime(settings, redis_client=fakeredis.FakeRedis())) as rt:
        yield rt


def quiet_now(zone: str = "Europe/Warsaw", seconds_left: int = 600) -> str:
    """ENGAGE_QUIET_HOURS covering now in ``zone``, ending ``seconds_left`` from now."""
    local = datetime.now(UTC).astimezone(ZoneInfo(zone))
    start = (local - timedelta(minutes=5)).strftime("%H:%M:%S")
    end = (local + timedelta(seconds=seconds_left)).strftime("%H:%M:%S")
    return f"{start}-{end}"


def sends(sandbox: Sandbox) -> int:
    """sendSingle calls the sandbox received."""
    return len(sandbox.state.calls_to("message/sendSingle"))


# -- deadlines --------------------------------------------------------------------------------


def test_a_deadline_passed_before_the_lease_ends_expired_without_a_call(
    policy_runtime: Runtime, sandbox: Sandbox
) -> None:
    """send_by in the past of Redis: expired, final, callback filed, nothing sent."""
    rt = policy_runtime
    rt.ledger.claim("k1", REQUEST, ["r1", "s1"], on_done=CALLBACK, policy=ClaimPolicy(send_by=1.0))
    assert delivery.send(rt, REQUEST, 33457, ctx()) == Stopped(SendState.EXPIRED)
    assert sends(sandbox) == 0
    status = delivery_status("k1")
    assert status["state"] == "expired"
    assert "deadline" in status["detail"]
    assert rt.callbacks.due_since("k1") is not None
    assert rt.dead_letters.get("k1") is None


def test_the_lookup_step_sees_the_deadline_too(policy_runtime: Runtime, sandbox: Sandbox) -> None:
    """An expired send makes no contact/get either."""
    rt = policy_runtime
    rt.ledger.claim("k1", REQUEST, ["r1", "s1"], policy=ClaimPolicy(send_by=1.0))
    assert delivery.resolve(rt, REQUEST, ctx()) == Stopped(SendState.EXPIRED)
    assert sandbox.state.calls_to("contact/get") == []


def test_a_retry_never_waits_past_the_deadline(policy_runtime: Runtime, sandbox: Sandbox) -> None:
    """503 with a 0.1 s retry and 30 s left keeps 0.1 s; with 2 s left a 30 s backoff is cut."""
    rt = policy_runtime
    rt.ledger.claim("k1", REQUEST, ["r1", "s1"], policy=ClaimPolicy(expires_in=2.0))
    sandbox.state.set_faults({"script": {"message/sendSingle": [503, 503, 503]}})
    first = delivery.send(rt, REQUEST, 33457, ctx())
    assert isinstance(first, Retry)
    assert first.delay <= 2.5
    long_wait = fake_runtime(
        make_settings(sandbox.base_url, ENGAGE_RETRY_BASE_DELAY="30"),
        redis_client=fakeredis.FakeRedis(),
    )
    long_wait.ledger.claim("k2", REQUEST, ["r1", "s1"], policy=ClaimPolicy(expires_in=2.0))
    cut = delivery.send(long_wait, REQUEST, 33457, ctx("k2"))
    assert isinstance(cut, Retry)
    assert cut.delay <= 2.5


def test_expires_in_reaches_the_record_from_the_api(
    policy_runtime: Runtime, broker: Broker
) -> None:
    """send_prepared_sms(expires_in=5) records a deadline 5 s ahead."""
    send_prepared_sms(23541, mobile=NUMBER, expires_in=5, idempotency_key="k1")
    expires_at = datetime.fromisoformat(delivery_status("k1")["expires_at"])
    assert abs((expires_at - datetime.now(UTC)).total_seconds() - 5) < 1


# -- opt-outs ---------------------------------------------------------------------------------


def test_an_opted_out_number_ends_suppressed_at_enqueue_with_its_callback(
    policy_runtime: Runtime, broker: Broker
) -> None:
    """No error, nothing published to a lane, the callback goes out with state suppressed."""
    drain(CALLBACK_QUEUE)
    suppress(mobile="+48 505 606 707")
    handle = send_prepared_sms(23541, mobile=NUMBER, idempotency_key="k1", on_done=CALLBACK)
    assert (handle.state, handle.created) == ("suppressed", True)
    assert broker.messages == []
    ((task, args),) = drain(CALLBACK_QUEUE)
    assert task == CALLBACK
    assert args[0]["state"] == "suppressed"
    assert "request" not in policy_runtime.ledger.record("k1")


def test_an_opt_out_while_the_send_waited_stops_it_under_the_lease(
    policy_runtime: Runtime, sandbox: Sandbox, broker: Broker
) -> None:
    """Enqueued, then opted out: the send step ends it suppressed and calls nothing."""
    send_prepared_sms(23541, mobile=NUMBER, idempotency_key="k1")
    suppress(mobile=NUMBER)
    assert delivery.send(policy_runtime, REQUEST, 33457, ctx()) == Stopped(SendState.SUPPRESSED)
    assert sends(sandbox) == 0
    assert delivery_status("k1")["state"] == "suppressed"


def test_suppression_lanes_leave_urgent_alone_when_told(sandbox: Sandbox, broker: Broker) -> None:
    """ENGAGE_SUPPRESSION_LANES=bulk,normal: an urgent send to an opted-out number goes."""
    settings = make_settings(sandbox.base_url, ENGAGE_SUPPRESSION_LANES="bulk,normal")
    with installed(fake_runtime(settings, redis_client=fakeredis.FakeRedis())) as rt:
        suppress(mobile=NUMBER)
        handle = send_prepared_sms(23541, mobile=NUMBER, idempotency_key="k1", priority="urgent")
        assert handle.state == "queued"
        assert delivery.send(rt, REQUEST, 33457, ctx(lane=Priority.URGENT)) == Sent(None)


# -- caps -------------------------------------------------------------------------------------


def test_the_third_bulk_send_to_a_recipient_ends_capped(
    policy_runtime: Runtime, sandbox: Sandbox, broker: Broker
) -> None:
    """bulk=2/24h: two bulk sends go, the third is capped; a normal one is not counted."""
    outcomes = []
    for key in ("b1", "b2", "b3"):
        send_prepared_sms(23541, mobile=NUMBER, idempotency_key=key, priority="bulk")
        outcomes.append(delivery.send(policy_runtime, REQUEST, 33457, ctx(key, Priority.BULK)))
    assert outcomes == [Sent(None), Sent(None), Stopped(SendState.CAPPED)]
    assert sandbox.state.sends[(23541, 33457)] == 2
    assert delivery_status("b3")["state"] == "capped"
    send_prepared_sms(23541, mobile=NUMBER, idempotency_key="n1")
    assert delivery.send(policy_runtime, REQUEST, 33457, ctx("n1")) == Sent(None)


# -- quiet hours ------------------------------------------------------------------------------


def test_a_bulk_send_in_quiet_hours_is_deferred_and_released_by_the_sweep(
    sandbox: Sandbox, broker: Broker
) -> None:
    """Deferred at enqueue (nothing published); once due, the sweep publishes it in its lane."""
    settings = make_settings(sandbox.base_url, ENGAGE_QUIET_HOURS=quiet_now())
    with installed(fake_runtime(settings, redis_client=fakeredis.FakeRedis())) as rt:
        handle = send_prepared_sms(23541, mobile=NUMBER, idempotency_key="k1", priority="bulk")
        assert handle.state == "deferred"
        assert broker.messages == []
        status = delivery_status("k1")
        assert status["state"] == "deferred"
        not_before = datetime.fromisoformat(status["not_before"])
        assert timedelta(seconds=590) < not_before - datetime.now(UTC) < timedelta(seconds=610)
        assert sweep(rt, now=time.time()).released == []
        rt.redis.zadd(rt.keys.deferred, {"k1": 1.0})  # the window opened
        assert sweep(rt, now=time.time()).released == ["k1"]
        ((message),) = broker.messages
        assert message.queue == "engage.bulk"
        assert delivery_status("k1")["state"] == "queued"


def test_urgent_and_normal_sends_do_not_wait_for_quiet_hours(
    sandbox: Sandbox, broker: Broker
) -> None:
    """Quiet hours apply to bulk only by default."""
    settings = make_settings(sandbox.base_url, ENGAGE_QUIET_HOURS=quiet_now())
    with installed(fake_runtime(settings, redis_client=fakeredis.FakeRedis())):
        assert send_prepared_sms(23541, mobile=NUMBER, priority="urgent").state == "queued"
        assert send_prepared_sms(23541, mobile=NUMBER).state == "queued"


def test_a_queued_bulk_send_that_meets_quiet_hours_is_deferred_by_the_send_step(
    sandbox: Sandbox, broker: Broker
) -> None:
    """A backlog that runs into the window waits in Redis, not in the worker."""
    settings = make_settings(sandbox.base_url, ENGAGE_QUIET_HOURS=quiet_now())
    with installed(fake_runtime(settings, redis_client=fakeredis.FakeRedis())) as rt:
        rt.ledger.claim("k1", REQUEST, ["r1", "s1"], priority=Priority.BULK)
        outcome = delivery.send(rt, REQUEST, 33457, ctx(lane=Priority.BULK))
        assert outcome == Stopped(SendState.DEFERRED)
        assert sends(sandbox) == 0
        assert rt.deferrals.depth() == 1


def test_an_e_mail_recipient_uses_the_default_zone(sandbox: Sandbox, broker: Broker) -> None:
    """ENGAGE_DEFAULT_TIMEZONE decides for identifiers without a zone."""
    settings = make_settings(
        sandbox.base_url,
        ENGAGE_QUIET_HOURS=quiet_now("America/Chicago"),
        ENGAGE_DEFAULT_TIMEZONE="America/Chicago",
    )
    with installed(fake_runtime(settings, redis_client=fakeredis.FakeRedis())):
        handle = send_prepared_sms(23541, email="ann@example.com", priority="bulk")
        assert handle.state == "deferred"
        # A Polish number is not in Chicago's night window.
        assert send_prepared_sms(23541, mobile=NUMBER, priority="bulk").state == "queued"


# -- contacts Engage does not know ------------------------------------------------------------

NEW_REQUEST = build_send_request(23541, mobile="+" + UNKNOWN)


def test_by_default_an_unknown_recipient_is_still_dead_lettered(sandbox: Sandbox) -> None:
    """Without create_contact nothing is created: the send ends unknown_recipient."""
    settings = make_settings(sandbox.base_url, ENGAGE_UNKNOWN_RECIPIENT_RETRIES="0")
    rt = fake_runtime(settings, redis_client=fakeredis.FakeRedis())
    rt.ledger.claim("k1", NEW_REQUEST, ["r1", "s1"], policy=ClaimPolicy())
    outcome = delivery.resolve(rt, NEW_REQUEST, ctx())
    assert isinstance(outcome, DeadLetter)
    assert outcome.reason == Reason.UNKNOWN_RECIPIENT
    assert sandbox.state.created == []


def test_create_contact_creates_the_unknown_recipient_then_sends(
    policy_runtime: Runtime, sandbox: Sandbox, broker: Broker
) -> None:
    """NO_SUCH_OBJECT -> contact/create -> sendSingle to the new id."""
    send_prepared_sms(23541, mobile=UNKNOWN, idempotency_key="k1", create_contact=True)
    found = delivery.resolve(policy_runtime, NEW_REQUEST, ctx())
    assert isinstance(found, Resolved)
    assert delivery.send(policy_runtime, NEW_REQUEST, found.contact_id, ctx()) == Sent(None)
    assert sandbox.state.created == [("MOBILE", UNKNOWN)]
    assert sandbox.state.sends[(23541, found.contact_id)] == 1


class CreatedMeanwhile:
    """The real client, but someone else creates the contact just before our create call."""

    def __init__(self, client: EngageClient, sandbox: Sandbox) -> None:
        self._client = client
        self._sandbox = sandbox

    def get_contact(self, identifier: Identifier) -> Contact:
        """Delegate."""
        return self._client.get_contact(identifier)

    def send_single(self, message_id: int, recipient_id: int, parameters: object) -> None:
        """Delegate."""
        self._client.send_single(message_id, recipient_id, parameters)  # type: ignore[arg-type]

    def create_contact(self, identifier: Identifier) -> Contact:
        """Another writer wins the race, then we call create."""
        contact = {"type": identifier.type, "value": identifier.value, "contactId": 4242}
        self._sandbox.state.add_contacts([contact])
        return self._client.create_contact(identifier)

    def api_version(self) -> str:
        """Delegate."""
        return self._client.api_version()


def test_already_exists_means_look_it_up_again(
    policy_runtime: Runtime, sandbox: Sandbox, broker: Broker
) -> None:
    """OBJECT_ALREADY_EXISTS: the lookup finds the other writer's contact; nothing created."""
    rt = policy_runtime
    rt.engage_override = CreatedMeanwhile(rt.engage, sandbox)
    rt.__dict__.pop("engage", None)
    send_prepared_sms(23541, mobile=UNKNOWN, idempotency_key="k1", create_contact=True)
    assert delivery.resolve(rt, NEW_REQUEST, ctx()) == Resolved(4242)
    assert sandbox.state.created == []
    assert [c.status for c in sandbox.state.calls_to("contact/create")] == [400]


def test_another_worker_creating_the_contact_makes_this_one_look_again_later(
    policy_runtime: Runtime, sandbox: Sandbox, broker: Broker
) -> None:
    """The creation lock is held elsewhere: a short Retry, and no create call from here."""
    rt = policy_runtime
    send_prepared_sms(23541, mobile=UNKNOWN, idempotency_key="k1", create_contact=True)
    digest = rt.hasher.digest("contact_create", UNKNOWN, 32)
    rt.redis.set(rt.keys.contact_create("MOBILE", digest), "other:0")
    assert delivery.resolve(rt, NEW_REQUEST, ctx()) == Retry(policy.CREATE_WAIT)
    assert sandbox.state.calls_to("contact/create") == []


def test_dlq_show_says_a_policy_end_is_no_dead_letter(
    policy_runtime: Runtime, capsys: pytest.CaptureFixture[str]
) -> None:
    """An expired send has no entry, and the CLI says why."""
    policy_runtime.ledger.claim("k1", REQUEST, ["r1", "s1"], policy=ClaimPolicy())
    policy_runtime.gate.finish("k1", SendState.EXPIRED, "x")
    assert main(["dlq", "show", "k1"]) == 1
    assert "ended expired" in capsys.readouterr().err
