"""After Engage may have acted, no error of any kind leads to another sendSingle.

Redis refusing writes while ``sent`` is recorded (a managed Redis failing over behind one name,
``min-replicas-to-write``, a replica still loading) is ridden out; anything else leaves the send
to the sweep's ``outcome_unknown``. "Redis unavailable" has one definition, used everywhere.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import fakeredis
import pytest
from redis._parsers.base import BaseParser

from tasks.core.errors import ServiceUnavailable
from tasks.core.outages import unavailable_as
from tasks.core.request import Identifier, build_send_request
from tasks.delivery import steps as delivery
from tasks.delivery.outcomes import SendOutcome
from tasks.delivery.runtime import Runtime, install_runtime
from tasks.delivery.steps import StepContext
from tasks.engage import Contact
from tasks.engage.http import api_error
from tasks.state import REDIS_UNREACHABLE, scripts
from tasks.worker import pipeline
from tests.support.environments import make_settings
from tests.support.recording_task import RecordingTask

REQUEST = build_send_request(23541, mobile="+48505606707")
MARK_SENT = hashlib.sha1(scripts.source("mark_sent").encode()).hexdigest()  # noqa: S324  (Redis's script id)

#: What Redis answers while it takes no writes for now, as redis-py parses it.
UNAVAILABLE_REPLIES = {
    "READONLY": "READONLY You can't write against a read only replica.",
    "NOREPLICAS": "NOREPLICAS Not enough good replicas to write.",
    "MASTERDOWN": "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is 'no'.",
    "LOADING": "LOADING Redis is loading the dataset in memory",
    "TRYAGAIN": "TRYAGAIN Multiple keys request during rehashing of slot",
}


def redis_error(reply: str) -> Exception:
    """The exception redis-py raises for this error reply."""
    error: Exception = BaseParser.parse_error(reply)  # type: ignore[no-untyped-call]  # redis-py
    return error


class RefusingWrites(fakeredis.FakeRedis):
    """fakeredis whose ``mark_sent`` script fails with ``error`` the first ``times`` calls."""

    def __init__(self, error: Exception, times: int) -> None:
        super().__init__()
        self.error, self.times = error, times

    def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> Any:
        """Fail mark_sent while ``times`` lasts."""
        if sha == MARK_SENT and self.times > 0:
            self.times -= 1
            raise self.error
        return super().evalsha(sha, numkeys, *keys_and_args)


class CountingEngage:
    """Engage that accepts every send and counts them (after ``refusals`` 503 answers)."""

    def __init__(self, refusals: int = 0) -> None:
        self.sends = 0
        self.refusals = refusals

    def get_contact(self, identifier: Identifier) -> Contact:
        """Never called here."""
        raise AssertionError("not used")

    def send_single(
        self, message_id: int, recipient_id: int, parameters: Sequence[tuple[str, str]]
    ) -> None:
        """Accept it (a 204), unless a 503 is still due."""
        if self.refusals:
            self.refusals -= 1
            raise api_error("message/sendSingle", 503, {}, {})
        self.sends += 1

    def create_contact(self, identifier: Identifier) -> Contact:
        """Never called here (the sending policy's contact/create)."""
        raise AssertionError("not used")

    def api_version(self) -> str:
        """Never called here."""
        raise AssertionError("not used")


def run_send_task(rt: Runtime, *, deliveries: int = 3) -> list[str]:
    """Run the send step as its task would, retrying as the task would; its results."""
    outcomes: list[str] = []
    install_runtime(rt)
    try:
        for retries in range(deliveries):
            task = RecordingTask()
            ctx = StepContext(key="k1", task_id="s1", retries=retries, task_ids=["r1", "s1"])

            def step(rt: Runtime, ctx: StepContext = ctx) -> SendOutcome:
                return delivery.send(rt, REQUEST, 33457, ctx)

            try:
                outcome = pipeline._step(task, ctx, "message/sendSingle", step)
                result = pipeline._conclude(task, ctx, outcome, contact_id=33457)
                outcomes.append(result["outcome"])
            except RuntimeError:
                assert task.retries, "the task failed without a retry"
                outcomes.append("retried")
                continue
            break
    finally:
        install_runtime(None)
    return outcomes


def runtime(client: fakeredis.FakeRedis, engage: CountingEngage) -> Runtime:
    """A runtime on ``client`` with k1 claimed."""
    rt = Runtime.build(make_settings("http://127.0.0.1:9/api"), redis_client=client, engage=engage)
    rt.ledger.claim("k1", REQUEST, ["r1", "s1"])
    return rt


@pytest.mark.parametrize("code", sorted(UNAVAILABLE_REPLIES))
def test_redis_refusing_writes_while_recording_sent_is_ridden_out(
    code: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """READONLY, NOREPLICAS, MASTERDOWN, LOADING, TRYAGAIN after a 204: recorded, sent once."""
    monkeypatch.setattr("time.sleep", lambda _: None)  # the wait between tries, not the test
    engage = CountingEngage()
    rt = runtime(RefusingWrites(redis_error(UNAVAILABLE_REPLIES[code]), times=2), engage)
    assert run_send_task(rt) == ["sent"]
    assert engage.sends == 1
    assert rt.ledger.state("k1") == "sent"


def test_a_redis_bug_while_recording_sent_is_left_to_the_sweep() -> None:
    """Any other error after a 204: no retry, no second send; the lease lapses for the sweep."""
    engage = CountingEngage()
    bug = redis_error("ERR Error running script: user_script:1: something unforeseen")
    rt = runtime(RefusingWrites(bug, times=5), engage)
    assert run_send_task(rt) == ["unrecorded"]
    assert engage.sends == 1
    assert rt.ledger.state("k1") == "sending"


def test_redis_away_longer_than_the_patience_is_left_to_the_sweep(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Redis refusing writes past RECORD_SENT_PATIENCE: given up, never retried, never resent."""
    monkeypatch.setattr(delivery, "RECORD_SENT_PATIENCE", 0.0)
    engage = CountingEngage()
    rt = runtime(RefusingWrites(redis_error(UNAVAILABLE_REPLIES["READONLY"]), times=5), engage)
    assert run_send_task(rt) == ["unrecorded"]
    assert engage.sends == 1


class RefusingOneIncrement(fakeredis.FakeRedis):
    """fakeredis whose first HINCRBY (a failure being counted) answers READONLY."""

    def __init__(self) -> None:
        super().__init__()
        self.refused = False

    def hincrby(self, name: Any, key: Any, amount: int = 1) -> Any:
        """READONLY the first time."""
        if not self.refused:
            self.refused = True
            raise redis_error(UNAVAILABLE_REPLIES["READONLY"])
        return super().hincrby(name, key, amount)


def test_a_failed_send_is_recorded_through_an_outage_so_its_retry_may_send(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A 503 (nothing sent) recorded while Redis refuses writes: the lease is given back once
    Redis takes writes again, so the retry sends, rather than finding its own old lease busy
    and leaving the send to the sweep's outcome_unknown."""
    monkeypatch.setattr("time.sleep", lambda _: None)
    engage = CountingEngage(refusals=1)
    rt = runtime(RefusingOneIncrement(), engage)
    assert run_send_task(rt) == ["retried", "sent"]
    assert engage.sends == 1
    assert rt.ledger.state("k1") == "sent"


@pytest.mark.parametrize("code", sorted(UNAVAILABLE_REPLIES))
def test_one_definition_of_redis_unavailable(code: str) -> None:
    """The workers' wait-and-retry and the callers' ServiceUnavailable agree on every reply."""
    error = redis_error(UNAVAILABLE_REPLIES[code])
    assert isinstance(error, REDIS_UNREACHABLE)
    with pytest.raises(ServiceUnavailable), unavailable_as("redis", "redis://127.0.0.1:1/0"):
        raise error
