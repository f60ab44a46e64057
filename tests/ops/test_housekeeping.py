"""Housekeeping: stuck sends are dead-lettered or published again, old dead letters dropped."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from tasks.core.request import build_send_request
from tasks.delivery.runtime import Runtime
from tasks.state.enums import Reason
from tasks.state.keys import RedisKeys
from tasks.worker.housekeeping import STUCK_DETAIL, dlq_cleanup, sweep
from tests.support.broker import Broker
from tests.support.environments import make_settings
from tests.support.runtime import fake_runtime, installed

#: The test settings' lease (connect 1 + read 1 + margin 1) and visibility timeout.
LEASE = 3.0
VISIBILITY = 30.0


@pytest.fixture
def rt() -> Iterator[Runtime]:
    """A fakeredis runtime with a short lease and visibility timeout, installed."""
    runtime = fake_runtime(make_settings(ENGAGE_DLQ_MAX_AGE_DAYS="1"))
    assert (runtime.settings.lease_seconds, runtime.settings.visibility_timeout) == (
        LEASE,
        VISIBILITY,
    )
    with installed(runtime):
        yield runtime


REQUEST = build_send_request(23541, mobile="+48505606707")


def queued(rt: Runtime, key: str) -> list[str]:
    """Claim ``key`` as a freshly queued send; returns its task ids."""
    task_ids = [f"{key}-t0", f"{key}-t1"]
    rt.ledger.claim(key, REQUEST, task_ids)
    return task_ids


def elapse(rt: Runtime, key: str, seconds: float) -> None:
    """Let ``seconds`` pass for the send: every stored time of it moves that far back."""
    keys = RedisKeys(rt.settings.key_prefix)
    record = rt.ledger.record(key)
    for field in ("updated_at", "lease_until", "retry_at"):
        if field in record:
            rt.redis.hset(keys.send(key), field, repr(float(record[field]) - seconds))
    score = rt.redis.zscore(keys.inflight, key)
    assert score is not None
    rt.redis.zadd(keys.inflight, {key: score - seconds})


def test_sending_past_its_lease_is_dead_lettered_as_outcome_unknown(
    rt: Runtime, broker: Broker
) -> None:
    """A send whose worker died mid-call lands in the dead-letter store, not in silence."""
    queued(rt, "k1")
    rt.ledger.begin_send("k1", "k1-t1:0", contact_id=7)
    elapse(rt, "k1", LEASE + 1)
    result = sweep(rt, now=time.time())
    assert result.dead_lettered == ["k1"]
    assert rt.ledger.state("k1") == "dead_lettered"
    entry = rt.dead_letters.get("k1")
    assert entry is not None
    assert entry["reason"] == "outcome_unknown"
    assert entry["detail"].startswith(f"{STUCK_DETAIL} (it ran out at 20")
    assert broker.published == []


def test_sending_within_its_lease_is_left_alone(rt: Runtime, broker: Broker) -> None:
    """A send whose lease still runs may be talking to Engage right now: untouched."""
    queued(rt, "k1")
    rt.ledger.begin_send("k1", "k1-t1:0", contact_id=7)
    elapse(rt, "k1", LEASE + 1)
    # Only the lease is fresh (the inflight entry is old): the lease decides.
    rt.redis.hset(RedisKeys(rt.settings.key_prefix).send("k1"), "lease_until", time.time() + 60)
    result = sweep(rt, now=time.time())
    assert result.dead_lettered == []
    assert rt.ledger.state("k1") == "sending"


def test_queued_past_the_visibility_timeout_is_published_again(rt: Runtime, broker: Broker) -> None:
    """A queued send whose message was lost is published again under its key, with new task ids.

    New ids, so the copy never shares a lease owner with the original, which kombu may restore.
    """
    task_ids = queued(rt, "k2")
    elapse(rt, "k2", VISIBILITY + 5)
    result = sweep(rt, now=time.time())
    assert result.republished == ["k2"]
    [(request, key, fresh)] = broker.published
    assert (request, key) == (REQUEST, "k2")
    assert not set(fresh) & set(task_ids)
    assert json.loads(rt.ledger.record("k2")["task_ids"]) == fresh


def test_republish_happens_once_per_visibility_timeout(rt: Runtime, broker: Broker) -> None:
    """The next minute's sweep does not publish the same waiting send again."""
    queued(rt, "k2")
    elapse(rt, "k2", VISIBILITY + 5)
    sweep(rt, now=time.time())
    sweep(rt, now=time.time() + 60)
    assert len(broker.published) == 1


def test_recently_queued_is_not_published_again(rt: Runtime, broker: Broker) -> None:
    """A send queued for less than the visibility timeout is still on its way."""
    queued(rt, "k3")
    elapse(rt, "k3", VISIBILITY - 5)
    assert sweep(rt, now=time.time()).republished == []
    assert broker.published == []


def test_retrying_waits_for_its_retry_time_before_counting_as_idle(
    rt: Runtime, broker: Broker
) -> None:
    """A retry scheduled far ahead is not idle until its retry time plus the timeout."""
    queued(rt, "k4")
    rt.ledger.begin_send("k4", "k4-t1:0", contact_id=7)
    rt.ledger.mark_retrying("k4", "k4-t1:0", "HTTP 503", retry_in=VISIBILITY)
    elapse(rt, "k4", VISIBILITY + 5)
    assert sweep(rt, now=time.time()).republished == []
    elapse(rt, "k4", VISIBILITY)
    assert sweep(rt, now=time.time()).republished == ["k4"]


def test_sent_sends_are_not_touched(rt: Runtime, broker: Broker) -> None:
    """A sent send is never moved, even if a stale inflight entry still names it."""
    queued(rt, "k5")
    rt.ledger.begin_send("k5", "k5-t1:0", contact_id=7)
    rt.ledger.mark_sent("k5")
    rt.redis.zadd(RedisKeys(rt.settings.key_prefix).inflight, {"k5": time.time() - 10 * VISIBILITY})
    result = sweep(rt, now=time.time())
    assert (result.dead_lettered, result.republished) == ([], [])
    assert rt.ledger.state("k5") == "sent"


def test_inflight_entry_without_record_is_forgotten(rt: Runtime, broker: Broker) -> None:
    """An inflight key whose record expired is removed from the inflight set."""
    keys = RedisKeys(rt.settings.key_prefix)
    rt.redis.zadd(keys.inflight, {"gone": time.time() - 100})
    assert sweep(rt, now=time.time()).forgotten == ["gone"]
    assert rt.redis.zscore(keys.inflight, "gone") is None


def test_concurrent_sweep_is_skipped(rt: Runtime, broker: Broker) -> None:
    """While one sweep holds the lock (two beats), another does nothing."""
    queued(rt, "k6")
    elapse(rt, "k6", VISIBILITY + 5)
    rt.redis.set(f"{rt.settings.key_prefix}:housekeeping:sweep", "other", ex=30)
    result = sweep(rt, now=time.time())
    assert result.skipped
    assert broker.published == []


def test_dlq_cleanup_drops_entries_past_their_age(rt: Runtime) -> None:
    """engage.dlq_cleanup removes dead letters older than ENGAGE_DLQ_MAX_AGE_DAYS."""
    for key in ("old", "new"):
        queued(rt, key)
        rt.dead_letters.add(key, reason=Reason.REJECTED, detail="x", error=None, task_ids=["t"])
    keys = RedisKeys(rt.settings.key_prefix)
    rt.redis.zadd(keys.dlq, {"old": time.time() - 2 * 86400})
    assert dlq_cleanup.run() == 1
    assert rt.dead_letters.keys() == ["new"]
