"""Each send's attempt history: one entry per Engage call, bounded, expiring with the record."""

from __future__ import annotations

import fakeredis
import pytest

from tasks.core.errors import EngageServerError
from tasks.core.request import build_send_request
from tasks.delivery.events import attempt_failed
from tasks.delivery.retry_policy import Decision
from tasks.delivery.runtime import Runtime
from tasks.state.attempts import MAX_ATTEMPT_ENTRIES, AttemptEntry, AttemptHistory
from tasks.state.keys import RedisKeys
from tests.support.runtime import fake_runtime


@pytest.fixture
def history() -> AttemptHistory:
    """A history on fakeredis with a retention of one day."""
    return AttemptHistory(fakeredis.FakeRedis(), keys=RedisKeys(), retention=86400)


def test_entries_are_kept_oldest_first_with_redis_time(history: AttemptHistory) -> None:
    """Two calls: both kept in order, each with a time."""
    history.add("k", AttemptEntry(stage="contact/get", outcome="ok", status=200))
    history.add("k", AttemptEntry(stage="message/sendSingle", outcome="retry", status=503))
    entries = history.history("k")
    assert [(e.stage, e.outcome, e.status) for e in entries] == [
        ("contact/get", "ok", 200),
        ("message/sendSingle", "retry", 503),
    ]
    assert all(e.at is not None and e.at > 1_700_000_000 for e in entries)


def test_only_the_last_entries_are_kept(history: AttemptHistory) -> None:
    """Past MAX_ATTEMPT_ENTRIES calls, the oldest go."""
    for n in range(MAX_ATTEMPT_ENTRIES + 5):
        history.add("k", AttemptEntry(stage="message/sendSingle", outcome="retry", status=n))
    kept = history.history("k")
    assert len(kept) == MAX_ATTEMPT_ENTRIES
    assert kept[0].status == 5


def test_the_history_expires_with_the_ledger_record() -> None:
    """The list takes the record's remaining time to live (a dead letter's is longer)."""
    client = fakeredis.FakeRedis()
    keys = RedisKeys()
    history = AttemptHistory(client, keys=keys, retention=60)
    client.hset(keys.send("k"), "state", "dead_lettered")
    client.pexpire(keys.send("k"), 5_000_000)
    history.add("k", AttemptEntry(stage="message/sendSingle", outcome="dead-letter", status=400))
    assert 4_900_000 < client.pttl(keys.attempts("k")) <= 5_000_000
    history.add("gone", AttemptEntry(stage="contact/get", outcome="ok", status=200))
    assert 0 < client.pttl(keys.attempts("gone")) <= 60_000


def test_a_failed_call_is_kept_without_private_values() -> None:
    """A 503 whose text echoes the number: kept as status and code only, with the retry."""
    rt: Runtime = fake_runtime()
    request = build_send_request(23541, mobile="+48505606707", parameters={"code": "918273"})
    rt.ledger.claim("k", request, ["t1", "t2"])
    err = EngageServerError(
        "message/sendSingle", status=503, error_code="BUSY", message="busy for 48505606707 918273"
    )
    attempt_failed(rt, "k", err, Decision(retry_in=30.0))
    raw = str(rt.redis.lrange(rt.keys.attempts("k"), 0, -1))
    assert "48505606707" not in raw
    assert "918273" not in raw
    (entry,) = rt.attempts.history("k")
    assert (entry.outcome, entry.status, entry.error, entry.retry_in) == ("retry", 503, "BUSY", 30)
