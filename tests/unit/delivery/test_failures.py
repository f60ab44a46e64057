"""Failures inside a step end in a known state: bounded retries, or a dead letter."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from types import SimpleNamespace

import fakeredis
import pytest
import redis

from tasks.core.errors import DeadLettered
from tasks.core.masking import Masker
from tasks.core.request import Identifier, SendRequest, build_send_request
from tasks.delivery import failures
from tasks.delivery import steps as delivery
from tasks.delivery.outcomes import DeadLetter, Retry, Sent, StepOutcome
from tasks.delivery.runtime import Runtime, install_runtime
from tasks.delivery.steps import StepContext
from tasks.engage import Contact
from tasks.state.enums import Reason
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
    assert delivery.send(rt, REQUEST, 33457, ctx()) == DeadLetter(
        Reason.INTERNAL_ERROR, "RuntimeError during message/sendSingle; Engage may have sent it"
    )
    assert client.calls == 1
    entry = rt.dead_letters.get("k1")
    assert entry is not None
    assert entry["error"]["type"] == "RuntimeError"
    assert "48505606707" not in str(entry)
    assert "may have sent" in entry["detail"]
    assert rt.ledger.state("k1") == "dead_lettered"


def test_unforeseen_error_before_any_call_is_retried_then_dead_lettered() -> None:
    """A lookup bug is retried ENGAGE_RETRY_MAX_ATTEMPTS times, then the send dead-lettered."""
    client = BrokenClient(RuntimeError("lookup bug"))
    rt = runtime_with(client)
    base = rt.settings.retry.base_delay
    for retries in range(2):
        assert delivery.resolve(rt, REQUEST, ctx(retries)) == Retry(
            min(base + rt.settings.retry.backoff * retries, rt.settings.retry.max_delay)
        )
        assert rt.ledger.state("k1") == "retrying"
    assert delivery.resolve(rt, REQUEST, ctx(2)) == DeadLetter(
        Reason.INTERNAL_ERROR, "RuntimeError in contact/get, 3 times; nothing was sent"
    )
    assert client.calls == 3
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
    outcome = delivery.send(rt, bad, 33457, ctx())
    assert isinstance(outcome, DeadLetter)
    assert outcome.reason == Reason.REJECTED
    assert "U+FFFE" in outcome.detail
    assert client.calls == 0


def redis_away_for(
    monkeypatch: pytest.MonkeyPatch, server: fakeredis.FakeServer, tries: int
) -> list[float]:
    """Redis away now and back after ``tries`` pauses; the pauses, recorded instead of slept."""
    waits: list[float] = []

    def wait(seconds: float) -> None:
        waits.append(seconds)
        server.connected = len(waits) >= tries

    monkeypatch.setattr(delivery, "time", SimpleNamespace(monotonic=time.monotonic, sleep=wait))
    server.connected = False
    return waits


def test_sent_is_recorded_after_a_short_redis_outage(monkeypatch: pytest.MonkeyPatch) -> None:
    """Engage accepted it while Redis was away: the worker keeps trying until it is recorded."""
    server = fakeredis.FakeServer()
    rt = runtime_with(BrokenClient(RuntimeError("unused")), server)
    monkeypatch.setattr(delivery, "RECORD_SENT_PATIENCE", 10.0)
    waits = redis_away_for(monkeypatch, server, tries=3)
    delivery._record_sent(rt, REQUEST, ctx())
    assert len(waits) == 3
    assert rt.ledger.state("k1") == "sent"


def test_a_write_after_the_call_is_tried_again_at_least_every_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A long outage: the pauses grow from 0.25 s to 1 s and stay there, so the holder records
    its answer within a second of Redis taking writes again (before a copy finds the lease
    lapsed)."""
    server = fakeredis.FakeServer()
    rt = runtime_with(BrokenClient(RuntimeError("unused")), server)
    waits = redis_away_for(monkeypatch, server, tries=8)
    delivery._record_sent(rt, REQUEST, ctx())
    assert waits == [0.25, 0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    assert rt.ledger.state("k1") == "sent"
    # An error answer's record (a 429 to mark retrying) rides out an outage at the same pace.
    waits = redis_away_for(monkeypatch, server, tries=8)
    assert delivery._through_outage(lambda: rt.ledger.state("k1")) == "sent"
    assert waits == [0.25, 0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]


def run_step(rt: Runtime, step: Callable[[Runtime], StepOutcome]) -> RecordingTask:
    """Run ``step`` as the pipeline runs a step, with ``rt`` installed; return the task."""
    task = RecordingTask()
    install_runtime(rt)
    try:
        with pytest.raises(RuntimeError, match=r"^retry$"):
            pipeline._conclude(task, ctx(), pipeline._step(task, ctx(), "contact/get", step))
    finally:
        install_runtime(None)
    return task


def test_pipeline_turns_an_unforeseen_error_into_a_bounded_retry() -> None:
    """A step failing with a bug's exception is retried with the policy's delay, not failed."""
    rt = runtime_with(BrokenClient(KeyError("bug")))
    task = run_step(rt, lambda rt: delivery.resolve(rt, REQUEST, ctx()))
    (options,) = task.retries
    assert options == {"countdown": rt.settings.retry.base_delay, "exc": None}
    assert rt.ledger.state("k1") == "retrying"


def test_pipeline_retries_when_redis_is_unreachable_and_waits_to_publish() -> None:
    """Redis down mid-step: a retry whose publish is retried until Redis answers again."""
    rt = runtime_with(BrokenClient(RuntimeError("unused")))

    def step(_: Runtime) -> StepOutcome:
        raise redis.ConnectionError("Connection refused")

    task = run_step(rt, step)
    (options,) = task.retries
    assert options["retry_policy"] == pipeline.INFRASTRUCTURE_PUBLISH_POLICY
    assert options["countdown"] == pipeline.INFRASTRUCTURE_RETRY_DELAY


def test_pipeline_fails_a_dead_lettered_step_with_dead_lettered() -> None:
    """A DeadLetter outcome fails the task with DeadLettered, chained to the masked error only."""
    rt = runtime_with(BrokenClient(RuntimeError("unused")))
    install_runtime(rt)
    try:
        with pytest.raises(DeadLettered) as caught:
            pipeline._conclude(
                RecordingTask(), ctx(), DeadLetter(Reason.REJECTED, "not sent: U+FFFE")
            )
    finally:
        install_runtime(None)
    assert (caught.value.key, caught.value.reason) == ("k1", "rejected")
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


class AcceptingClient(BrokenClient):
    """An Engage client that accepts every send (a 204)."""

    def send_single(
        self, message_id: int, recipient_id: int, parameters: Sequence[tuple[str, str]]
    ) -> None:
        """Accept it."""
        self.calls += 1


class CountingMasker(Masker):
    """A Masker that counts how many are built."""

    built = 0

    def __init__(self, secrets: Iterable[str], *, readable: Iterable[str] = ()) -> None:
        type(self).built += 1
        super().__init__(secrets, readable=readable)


def test_a_failed_step_builds_one_masker(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug during sendSingle: the log, the entry and the outcome share the step's one Masker."""
    monkeypatch.setattr(failures, "Masker", CountingMasker)
    monkeypatch.setattr(CountingMasker, "built", 0)
    rt = runtime_with(BrokenClient(RuntimeError("boom for 48505606707")))
    outcome = delivery.send(rt, REQUEST, 33457, ctx())
    assert isinstance(outcome, DeadLetter)
    assert CountingMasker.built == 1


def test_a_step_that_succeeds_builds_no_masker(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing to mask on the way to sent: the Masker is built at a step's first failure."""
    monkeypatch.setattr(failures, "Masker", CountingMasker)
    monkeypatch.setattr(CountingMasker, "built", 0)
    rt = runtime_with(AcceptingClient(RuntimeError("unused")))
    assert delivery.send(rt, REQUEST, 33457, ctx()) == Sent(callback=None)
    assert CountingMasker.built == 0
