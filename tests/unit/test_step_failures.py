"""Failures inside a step end in a known state: bounded retries, or a dead letter."""

from __future__ import annotations

import time
from collections.abc import Sequence
from types import SimpleNamespace

import fakeredis
import pytest
import redis

from tasks.delivery import steps as delivery
from tasks.delivery.runtime import Runtime, install_runtime
from tasks.delivery.steps import RetryLater, StepContext
from tasks.engage import Contact
from tasks.errors import DeadLettered
from tasks.request import Identifier, SendRequest, build_send_request
from tasks.worker import pipeline
from tests.conftest import make_settings
from tests.support.recording_task import RecordingTask

REQUEST = build_send_request(23541, mobile="+48505606707", parameters={"firstName": "Ann"})


class BrokenClient:
    """An Engage client whose calls raise what the transport does not sort (a bug)."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.calls = 0

    def get_contact(self, identifier: Identifier) -> Contact:
        """Raise the error."""
        self.calls += 1
        raise self.error

    def send_single(
        self, message_id: int, recipient_id: int, parameters: Sequence[tuple[str, str]]
    ) -> None:
        """Raise the error."""
        self.calls += 1
        raise self.error

    def create_contact(self, identifier: Identifier) -> Contact:
        """Raise the error."""
        self.calls += 1
        raise self.error

    def api_version(self) -> str:
        """Never called here."""
        raise AssertionError("not used")


def runtime_with(client: BrokenClient, server: fakeredis.FakeServer | None = None) -> Runtime:
    """A fakeredis runtime whose Engage client is ``client``, with k1 claimed."""
    settings = make_settings("http://127.0.0.1:9/api", ENGAGE_RETRY_MAX_ATTEMPTS="2")
    redis_client = fakeredis.FakeRedis(server=server or fakeredis.FakeServer())
    rt = Runtime.build(settings, redis_client=redis_client, engage=client)
    rt.ledger.claim("k1", REQUEST, ["r1", "s1"])
    return rt


def ctx(retries: int = 0) -> StepContext:
    """The step context of the send under k1."""
    return StepContext(key="k1", task_id="s1", retries=retries, task_ids=["r1", "s1"])


def test_unforeseen_error_in_send_dead_letters_as_internal_error() -> None:
    """A client bug during sendSingle: dead-lettered internal_error, never retried blindly."""
    client = BrokenClient(RuntimeError("boom for 48505606707"))
    rt = runtime_with(client)
    with pytest.raises(DeadLettered) as caught:
        delivery.send(rt, REQUEST, 33457, ctx())
    assert caught.value.reason == "internal_error"
    assert client.calls == 1
    entry = rt.dead_letters.get("k1")
    assert entry is not None
    assert entry["error"]["type"] == "RuntimeError"
    assert "48505606707" not in str(entry)
    assert "may have sent" in entry["detail"]
    assert rt.ledger.state("k1") == "dead_lettered"


def test_unforeseen_error_before_any_call_is_retried_then_dead_lettered() -> None:
    """internal_failure retries ENGAGE_RETRY_MAX_ATTEMPTS times, then dead-letters the send."""
    rt = runtime_with(BrokenClient(RuntimeError("lookup bug")))
    err = RuntimeError("lookup bug")
    for _ in range(2):
        assert isinstance(
            delivery.internal_failure(rt, REQUEST, ctx(), err, stage="contact/get"), RetryLater
        )
        assert rt.ledger.state("k1") == "retrying"
    final = delivery.internal_failure(rt, REQUEST, ctx(), err, stage="contact/get")
    assert isinstance(final, DeadLettered)
    assert final.reason == "internal_error"
    entry = rt.dead_letters.get("k1")
    assert entry is not None
    assert "nothing was sent" in entry["detail"]


def test_request_no_transport_can_carry_is_rejected_before_the_lease() -> None:
    """A queued request with U+FFFE is dead-lettered rejected, with no Engage call."""
    client = BrokenClient(AssertionError("must not be called"))
    bad = SendRequest(
        message_id=23541,
        identifier=Identifier("MOBILE", "48505606707"),
        parameters=(("firstName", "An\ufffen"),),
    )
    rt = runtime_with(client)
    with pytest.raises(DeadLettered) as caught:
        delivery.send(rt, bad, 33457, ctx())
    assert caught.value.reason == "rejected"
    assert "U+FFFE" in caught.value.detail
    assert client.calls == 0


def test_sent_is_recorded_after_a_short_redis_outage(monkeypatch: pytest.MonkeyPatch) -> None:
    """Engage accepted it while Redis was away: the worker keeps trying until it is recorded."""
    server = fakeredis.FakeServer()
    rt = runtime_with(BrokenClient(RuntimeError("unused")), server)
    monkeypatch.setattr(delivery, "RECORD_SENT_PATIENCE", 10.0)
    waits: list[float] = []

    def wait(seconds: float) -> None:
        """The pause between tries, not slept: Redis is back after the third."""
        waits.append(seconds)
        server.connected = len(waits) >= 3

    monkeypatch.setattr(delivery, "time", SimpleNamespace(monotonic=time.monotonic, sleep=wait))
    server.connected = False
    delivery._record_sent(rt, REQUEST, ctx())
    assert len(waits) == 3
    assert rt.ledger.state("k1") == "sent"


def run_step(rt: Runtime, error: Exception) -> RecordingTask:
    """Run a pipeline step that raises ``error`` with ``rt`` installed; return the task."""
    task = RecordingTask()
    install_runtime(rt)
    try:

        def step(_: Runtime) -> int:
            raise error

        with pytest.raises(RuntimeError, match=r"^retry$"):
            pipeline._step(task, ctx(), REQUEST, "contact/get", step)
    finally:
        install_runtime(None)
    return task


def test_pipeline_turns_an_unforeseen_error_into_a_bounded_retry() -> None:
    """A step raising a bug's exception is retried with the policy's delay, not failed."""
    rt = runtime_with(BrokenClient(RuntimeError("unused")))
    task = run_step(rt, KeyError("bug"))
    (options,) = task.retries
    assert options["countdown"] == rt.settings.retry.base_delay
    assert rt.ledger.state("k1") == "retrying"


def test_pipeline_retries_when_redis_is_unreachable_and_waits_to_publish() -> None:
    """Redis down mid-step: a retry whose publish is retried until Redis answers again."""
    rt = runtime_with(BrokenClient(RuntimeError("unused")))
    task = run_step(rt, redis.ConnectionError("Connection refused"))
    (options,) = task.retries
    assert options["retry_policy"] == pipeline.INFRASTRUCTURE_PUBLISH_POLICY
    assert options["countdown"] == pipeline.INFRASTRUCTURE_RETRY_DELAY
