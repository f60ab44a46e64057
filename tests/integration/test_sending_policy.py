"""The sending policy with real workers, real Redis and the sandbox, end to end."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import redis

from tasks.api import delivery_status, send_prepared_sms, suppress
from tasks.cli.local_stack import ManagedProcess
from tasks.core.request import build_send_request
from tasks.core.settings import load_settings
from tasks.delivery.runtime import Runtime, install_runtime
from tasks.sandbox import Sandbox
from tasks.worker.publish import publish
from tests.integration.conftest import WorkerFactory, wait_for
from tests.support import callback_app
from tests.support.environments import PYTEST_PROCESS_ENV

pytestmark = pytest.mark.integration

MESSAGE_ID = 23541
#: The sandbox's demo contact (Poland: Europe/Warsaw).
KNOWN = "48505606707"
KNOWN_ID = 33457
#: A valid Polish mobile number the sandbox does not know.
UNKNOWN = "48600700800"
FINAL = ("sent", "dead_lettered", "expired", "capped", "suppressed")

Enqueuer = Callable[..., Runtime]


@pytest.fixture
def enqueuer(redis_db: redis.Redis) -> Iterator[Enqueuer]:
    """Configure this (the web) process's sending policy: ``enqueuer(ENGAGE_X="...")``."""

    def configure(**env: str) -> Runtime:
        runtime = Runtime.build(load_settings({**PYTEST_PROCESS_ENV, **env}))
        install_runtime(runtime)
        return runtime

    yield configure
    install_runtime(None)


def final_state(key: str, timeout: float = 30.0) -> dict[str, object]:
    """The status of ``key`` once it is final."""
    status: dict[str, object] = wait_for(
        lambda: (s := delivery_status(key))["state"] in FINAL and s,
        timeout=timeout,
        what=f"{key} to end",
    )
    return status


def epoch(iso: object) -> float:
    """An ISO 8601 status time as epoch seconds."""
    return datetime.fromisoformat(str(iso)).timestamp()


@pytest.mark.parametrize("failing", ["*", "message/sendSingle"])
def test_an_urgent_send_whose_deadline_passes_against_503s_ends_expired(
    start_workers: WorkerFactory, sandbox: Sandbox, enqueuer: Enqueuer, failing: str
) -> None:
    """expires_in=5 while Engage answers 503: expired, and no call for it after the deadline."""
    patient = {"ENGAGE_RETRY_MAX_ATTEMPTS": "100", "ENGAGE_RETRY_MAX_TOTAL": "600"}
    enqueuer(**patient)
    sandbox.state.set_faults({"script": {failing: [503] * 200}})
    start_workers(sandbox.base_url, **patient)
    handle = send_prepared_sms(
        MESSAGE_ID, mobile=KNOWN, priority="urgent", expires_in=5, idempotency_key="otp-1"
    )
    deadline = epoch(delivery_status(handle.key)["expires_at"])
    assert final_state(handle.key, timeout=20)["state"] == "expired"
    assert sandbox.state.sends == {}
    calls = sandbox.state.calls
    assert calls, "Engage was called while the deadline was ahead"
    # Nothing reaches Engage for it once the deadline passed (a call granted just before it may
    # arrive a moment later), and nothing more afterwards.
    assert max(c.at for c in calls) <= deadline + 0.5
    seen = len(calls)
    time.sleep(2)  # an observation window: retries were due every 0.2 - 1 s
    assert len(sandbox.state.calls) == seen


def quiet_window_ending_in(seconds: int, zone: str = "Europe/Warsaw") -> str:
    """ENGAGE_QUIET_HOURS that began a minute ago and ends ``seconds`` from now in ``zone``."""
    local = datetime.now(UTC).astimezone(ZoneInfo(zone))
    start = (local - timedelta(minutes=1)).strftime("%H:%M:%S")
    end = (local + timedelta(seconds=seconds)).strftime("%H:%M:%S")
    return f"{start}-{end}"


def test_a_bulk_send_in_quiet_hours_is_deferred_and_sent_when_the_window_opens(
    start_workers: WorkerFactory, sandbox: Sandbox, enqueuer: Enqueuer
) -> None:
    """Deferred at enqueue, held in Redis, released by the workers' sweep, sent after not_before."""
    # Long enough for the worker to start under load before the window closes.
    quiet = {"ENGAGE_QUIET_HOURS": quiet_window_ending_in(25), "ENGAGE_SWEEP_INTERVAL": "1"}
    enqueuer(**quiet)
    start_workers(sandbox.base_url, **quiet)
    handle = send_prepared_sms(MESSAGE_ID, mobile=KNOWN, priority="bulk", idempotency_key="camp-1")
    assert handle.state == "deferred"
    not_before = epoch(delivery_status(handle.key)["not_before"])
    assert final_state(handle.key, timeout=60)["state"] == "sent"
    (call,) = sandbox.state.calls_to("message/sendSingle")
    assert call.at >= not_before
    assert sandbox.state.sends == {(MESSAGE_ID, KNOWN_ID): 1}


def test_the_third_bulk_send_in_a_day_to_one_recipient_ends_capped(
    start_workers: WorkerFactory,
    sandbox: Sandbox,
    enqueuer: Enqueuer,
    host_worker: ManagedProcess,
    redis_db: redis.Redis,
) -> None:
    """bulk=2/24h across two workers: two sent, one capped (with its callback), two calls."""
    cap = {"ENGAGE_RECIPIENT_CAP": "bulk=2/24h"}
    enqueuer(**cap)
    start_workers(sandbox.base_url, **cap)
    start_workers(sandbox.base_url, **cap)
    keys = [f"campaign-{n}" for n in range(3)]
    for key in keys:
        send_prepared_sms(
            MESSAGE_ID,
            mobile=KNOWN,
            priority="bulk",
            idempotency_key=key,
            on_done=callback_app.TASK,
        )
    states = Counter(str(final_state(key)["state"]) for key in keys)
    assert states == {"sent": 2, "capped": 1}
    assert sandbox.state.sends == {(MESSAGE_ID, KNOWN_ID): 2}
    received = wait_for(
        lambda: (n := redis_db.lrange(callback_app.RECEIVED, 0, -1)) and len(n) >= 3 and n,
        what="three callbacks",
    )
    assert Counter(json.loads(raw)["state"] for raw in received) == {"sent": 2, "capped": 1}


def test_an_opted_out_number_is_never_sent_to_even_when_it_opted_out_while_waiting(
    start_workers: WorkerFactory, sandbox: Sandbox, enqueuer: Enqueuer
) -> None:
    """Queued before the opt-out: suppressed by the worker; enqueued after: suppressed at once."""
    enqueuer()
    waiting = send_prepared_sms(MESSAGE_ID, mobile=KNOWN, idempotency_key="waited")
    assert waiting.state == "queued"
    suppress(mobile="+48 505 606 707")
    late = send_prepared_sms(MESSAGE_ID, mobile=KNOWN, idempotency_key="after", priority="urgent")
    assert late.state == "suppressed"
    start_workers(sandbox.base_url)
    assert final_state(waiting.key)["state"] == "suppressed"
    assert delivery_status(late.key)["state"] == "suppressed"
    assert sandbox.state.calls_to("message/sendSingle") == []


def test_with_create_contact_an_unknown_number_is_created_once_and_sent_once(
    start_workers: WorkerFactory, sandbox: Sandbox, enqueuer: Enqueuer
) -> None:
    """Two sends and a duplicate chain race for one unknown number: one contact, one send each."""
    enqueuer()
    sandbox.state.set_faults({"script": {"contact/create": ["delay:1"]}})
    start_workers(sandbox.base_url)
    first = send_prepared_sms(
        MESSAGE_ID, mobile=UNKNOWN, idempotency_key="new-1", create_contact=True
    )
    # The same chain published again, as a redelivery or the sweep would: it races the first.
    record = redis.Redis.from_url(PYTEST_PROCESS_ENV["CELERY_BROKER_URL"]).hgetall(
        f"engage:send:{first.key}"
    )
    task_ids = json.loads(record[b"task_ids"])
    publish(
        build_send_request(MESSAGE_ID, mobile=UNKNOWN),
        first.key,
        task_ids,
        deployment=PYTEST_PROCESS_ENV.get("ENGAGE_KEY_PREFIX", "engage"),
    )
    second = send_prepared_sms(
        MESSAGE_ID, mobile=UNKNOWN, idempotency_key="new-2", create_contact=True
    )
    assert final_state(first.key)["state"] == "sent"
    assert final_state(second.key)["state"] == "sent"
    assert sandbox.state.created == [("MOBILE", UNKNOWN)]
    (((message_id, contact_id), count),) = sandbox.state.sends.items()
    assert (message_id, count) == (MESSAGE_ID, 2)
    creates = sandbox.state.calls_to("contact/create")
    assert [c.status for c in creates].count(200) == 1
    assert delivery_status(first.key)["contact_id"] == str(contact_id)
