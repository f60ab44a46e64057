"""The GCRA rate limiter: reservations on fakeredis, the window bound on real Redis."""

from __future__ import annotations

import threading
import time
import uuid

import fakeredis
import pytest
import redis

from tasks.state.keys import RedisKeys
from tasks.state.rate_limit import RateLimiter

#: fakeredis reads the real clock, so a reservation is a little less than its slot offset.
SLACK = 0.05
#: The limit's key under the prefix ``t`` the limiters here use.
KEY = RedisKeys("t").rate_limit


def limiter(
    client: redis.Redis | None = None, *, rate: float = 1, burst: float = 1, prefix: str = "t"
) -> RateLimiter:
    """A limiter on fakeredis unless a client is given."""
    keys = RedisKeys(prefix)
    return RateLimiter(client or fakeredis.FakeRedis(), keys=keys, rate=rate, burst=burst)


def test_first_call_may_go_now() -> None:
    """An unused limit lets the first call start at once."""
    assert limiter().reserve(max_wait=10) == 0.0


def test_burst_calls_go_at_once_and_the_next_waits_one_interval() -> None:
    """With burst=3 three calls start now; the fourth is scheduled 1/rate later."""
    rl = limiter(rate=10, burst=3)
    assert [rl.reserve(max_wait=10) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert rl.reserve(max_wait=10) == pytest.approx(rl.interval, abs=SLACK)


def test_slots_are_a_little_more_than_one_over_rate_apart() -> None:
    """The jitter allowance spaces slots 5% wider than 1/rate: 105 ms at 10/s."""
    assert limiter(rate=10).interval == pytest.approx(0.105)
    assert limiter(rate=0).interval == 0.0


def test_reservations_queue_one_interval_apart() -> None:
    """At rate=1, burst=1 successive reservations are 0, ~1 and ~2 intervals away."""
    rl = limiter()
    delays = [rl.reserve(max_wait=10) for _ in range(3)]
    t = rl.interval
    assert delays == [0.0, pytest.approx(t, abs=SLACK), pytest.approx(2 * t, abs=SLACK)]


def test_slot_beyond_max_wait_is_refused_and_not_reserved() -> None:
    """A slot further than max_wait gives None, and the next caller gets that same slot."""
    rl = limiter()
    rl.reserve(max_wait=10)
    assert rl.reserve(max_wait=0.5) is None
    assert rl.reserve(max_wait=10) == pytest.approx(rl.interval, abs=SLACK)


def test_wait_hint_reports_the_next_slot_without_reserving_it() -> None:
    """wait_hint() says how far the next slot is, and calling it leaves the schedule alone."""
    rl = limiter()
    rl.reserve(max_wait=10)
    assert rl.wait_hint() == pytest.approx(rl.interval, abs=SLACK)
    assert rl.wait_hint() == pytest.approx(rl.interval, abs=SLACK)
    assert rl.reserve(max_wait=10) == pytest.approx(rl.interval, abs=SLACK)


def test_wait_hint_is_zero_when_a_slot_is_free() -> None:
    """An unused limit has a slot free now."""
    assert limiter().wait_hint() == 0.0


def test_unused_capacity_comes_back_with_time() -> None:
    """After a pause of more than one interval the next call may go at once again."""
    rl = limiter(rate=20, burst=1)
    rl.reserve(max_wait=10)
    time.sleep(0.1)
    assert rl.reserve(max_wait=10) == 0.0


def test_limiters_on_one_key_share_one_schedule() -> None:
    """Two limiters (as in two worker processes) on the same key queue behind each other."""
    client = fakeredis.FakeRedis()
    limiter(client).reserve(max_wait=10)
    assert limiter(client).reserve(max_wait=10) == pytest.approx(limiter().interval, abs=SLACK)


def test_limiters_on_different_keys_are_independent() -> None:
    """A reservation under one key does not delay calls under another."""
    client = fakeredis.FakeRedis()
    limiter(client, prefix="a").reserve(max_wait=10)
    assert limiter(client, prefix="b").reserve(max_wait=10) == 0.0


def test_key_expires_when_its_schedule_is_past() -> None:
    """After three reservations at 1/s the key lives about three intervals, no longer."""
    client = fakeredis.FakeRedis()
    rl = limiter(client)
    for _ in range(3):
        rl.reserve(max_wait=10)
    three_ms = 3 * rl.interval * 1000
    assert three_ms - 100 < client.pttl(KEY) <= three_ms + 1


def test_refused_reservation_leaves_the_key_unchanged() -> None:
    """A refused reservation writes nothing: the stored schedule is the same before and after."""
    client = fakeredis.FakeRedis()
    rl = limiter(client)
    rl.reserve(max_wait=10)
    before = client.get(KEY)
    assert rl.reserve(max_wait=0.5) is None
    assert client.get(KEY) == before


def test_wait_hint_creates_no_key() -> None:
    """Asking for a hint on an unused limit leaves Redis empty."""
    client = fakeredis.FakeRedis()
    limiter(client).wait_hint()
    assert client.exists(KEY) == 0


def test_zero_rate_without_a_stored_budget_lets_every_call_go() -> None:
    """rate=0 and no budget agreed by any worker: every call goes at once, nothing is written."""
    client = fakeredis.FakeRedis()
    rl = limiter(client, rate=0)
    assert [rl.reserve(max_wait=0), rl.wait_hint(), rl.acquire(max_wait=0)] == [0.0, 0.0, True]
    assert client.keys("*") == []


def test_burst_below_one_is_refused() -> None:
    """A burst under one call could never let a call through: the constructor says so."""
    with pytest.raises(ValueError, match="burst"):
        limiter(rate=10, burst=0.5)


def test_acquire_sleeps_until_the_reserved_slot() -> None:
    """The second acquire at rate=5 returns True after sleeping one interval (0.21 s)."""
    rl = limiter(rate=5, burst=1)
    rl.acquire(max_wait=10)
    started = time.monotonic()
    assert rl.acquire(max_wait=10) is True
    assert time.monotonic() - started == pytest.approx(rl.interval, abs=SLACK)


def test_acquire_refuses_at_once_when_the_slot_is_too_far() -> None:
    """acquire() returns False without sleeping when the wait would exceed max_wait."""
    rl = limiter()
    rl.acquire(max_wait=10)
    started = time.monotonic()
    assert rl.acquire(max_wait=0.5) is False
    assert time.monotonic() - started < SLACK


def test_concurrent_starts_stay_within_rate_plus_burst_per_second(
    real_redis: redis.Redis,
) -> None:
    """Eight threads acquiring for 1.5 s at rate=20, burst=5: no 1 s window holds over 25 starts."""
    rate, burst = 20, 5
    keys = RedisKeys(f"test-{uuid.uuid4().hex}")
    rl = RateLimiter(real_redis, keys=keys, rate=rate, burst=burst)
    starts: list[float] = []
    barrier = threading.Barrier(8)
    deadline = time.monotonic() + 1.5

    def call_engage() -> None:
        barrier.wait()
        while time.monotonic() < deadline:
            if rl.acquire(max_wait=2.0):
                starts.append(time.monotonic())
            else:
                time.sleep(rl.wait_hint())

    threads = [threading.Thread(target=call_engage) for _ in range(8)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        real_redis.delete(keys.rate_limit)
    starts.sort()
    busiest = max(sum(1 for s in starts[i:] if s - first <= 1.0) for i, first in enumerate(starts))
    # The limit must also let calls through: burst + 1.5 s of slots is 33 starts.
    assert len(starts) >= 30
    assert busiest <= rate + burst
