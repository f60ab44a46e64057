"""The GCRA rate limiter on fakeredis, on a virtual clock: every slot and wait is exact."""

from __future__ import annotations

import fakeredis
import pytest
import redis

from tasks.state.keys import RedisKeys
from tasks.state.rate_limit import RateLimiter
from tests.support.virtual_clock import VirtualClock

#: The limit's key under the prefix ``t`` the limiters here use.
KEY = RedisKeys("t").rate_limit


def limiter(
    clock: VirtualClock,
    client: redis.Redis | None = None,
    *,
    rate: float = 1,
    burst: float = 1,
    prefix: str = "t",
) -> RateLimiter:
    """A limiter sleeping on ``clock``, on fakeredis unless a client is given."""
    return RateLimiter(
        client or fakeredis.FakeRedis(),
        keys=RedisKeys(prefix),
        rate=rate,
        burst=burst,
        sleep=clock.sleep,
        monotonic=clock.monotonic,
    )


def test_first_call_may_go_now(clock: VirtualClock) -> None:
    """An unused limit lets the first call start at once."""
    assert limiter(clock).reserve(max_wait=10) == 0.0


def test_burst_calls_go_at_once_and_the_next_waits_one_interval(clock: VirtualClock) -> None:
    """With burst=3 three calls start now; the fourth is scheduled 1/rate later."""
    rl = limiter(clock, rate=10, burst=3)
    assert [rl.reserve(max_wait=10) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert rl.reserve(max_wait=10) == pytest.approx(rl.interval)


def test_slots_are_a_little_more_than_one_over_rate_apart(clock: VirtualClock) -> None:
    """The jitter allowance spaces slots 5% wider than 1/rate: 105 ms at 10/s."""
    assert limiter(clock, rate=10).interval == pytest.approx(0.105)
    assert limiter(clock, rate=0).interval == 0.0


def test_reservations_queue_one_interval_apart(clock: VirtualClock) -> None:
    """At rate=1, burst=1 successive reservations are 0, ~1 and ~2 intervals away."""
    rl = limiter(clock)
    delays = [rl.reserve(max_wait=10) for _ in range(3)]
    t = rl.interval
    assert delays == [0.0, pytest.approx(t), pytest.approx(2 * t)]


def test_slot_beyond_max_wait_is_refused_and_not_reserved(clock: VirtualClock) -> None:
    """A slot further than max_wait gives None, and the next caller gets that same slot."""
    rl = limiter(clock)
    rl.reserve(max_wait=10)
    assert rl.reserve(max_wait=0.5) is None
    assert rl.reserve(max_wait=10) == pytest.approx(rl.interval)


def test_wait_hint_reports_the_next_slot_without_reserving_it(clock: VirtualClock) -> None:
    """wait_hint() says how far the next slot is, and calling it leaves the schedule alone."""
    rl = limiter(clock)
    rl.reserve(max_wait=10)
    assert rl.wait_hint() == pytest.approx(rl.interval)
    assert rl.wait_hint() == pytest.approx(rl.interval)
    assert rl.reserve(max_wait=10) == pytest.approx(rl.interval)


def test_wait_hint_is_zero_when_a_slot_is_free(clock: VirtualClock) -> None:
    """An unused limit has a slot free now."""
    assert limiter(clock).wait_hint() == 0.0


def test_unused_capacity_comes_back_with_time(clock: VirtualClock) -> None:
    """After a pause of more than one interval the next call may go at once again."""
    rl = limiter(clock, rate=20, burst=1)
    rl.reserve(max_wait=10)
    clock.advance(rl.interval)
    assert rl.reserve(max_wait=10) == 0.0


def test_limiters_on_one_key_share_one_schedule(clock: VirtualClock) -> None:
    """Two limiters (as in two worker processes) on the same key queue behind each other."""
    client = fakeredis.FakeRedis()
    limiter(clock, client).reserve(max_wait=10)
    assert limiter(clock, client).reserve(max_wait=10) == pytest.approx(limiter(clock).interval)


def test_limiters_on_different_keys_are_independent(clock: VirtualClock) -> None:
    """A reservation under one key does not delay calls under another."""
    client = fakeredis.FakeRedis()
    limiter(clock, client, prefix="a").reserve(max_wait=10)
    assert limiter(clock, client, prefix="b").reserve(max_wait=10) == 0.0


def test_key_expires_when_its_schedule_is_past(clock: VirtualClock) -> None:
    """After three reservations at 1/s the key lives about three intervals, no longer."""
    client = fakeredis.FakeRedis()
    rl = limiter(clock, client)
    for _ in range(3):
        rl.reserve(max_wait=10)
    assert client.pttl(KEY) == pytest.approx(3 * rl.interval * 1000, abs=1)


def test_refused_reservation_leaves_the_key_unchanged(clock: VirtualClock) -> None:
    """A refused reservation writes nothing: the stored schedule is the same before and after."""
    client = fakeredis.FakeRedis()
    rl = limiter(clock, client)
    rl.reserve(max_wait=10)
    before = client.get(KEY)
    assert rl.reserve(max_wait=0.5) is None
    assert client.get(KEY) == before


def test_wait_hint_books_nothing(clock: VirtualClock) -> None:
    """Asking for a hint on an unused limit writes only the agreed budget: no slot, no lane."""
    client = fakeredis.FakeRedis()
    limiter(clock, client).wait_hint()
    assert client.keys("*") == [RedisKeys("t").rate_budget.encode()]


def test_zero_rate_without_a_stored_budget_lets_every_call_go(clock: VirtualClock) -> None:
    """rate=0 and no budget agreed by any worker: every call goes at once, nothing is written."""
    client = fakeredis.FakeRedis()
    rl = limiter(clock, client, rate=0)
    assert [rl.reserve(max_wait=0), rl.wait_hint(), rl.acquire(max_wait=0)] == [0.0, 0.0, True]
    assert client.keys("*") == []


def test_burst_below_one_is_refused(clock: VirtualClock) -> None:
    """A burst under one call could never let a call through: the constructor says so."""
    with pytest.raises(ValueError, match="burst"):
        limiter(clock, rate=10, burst=0.5)


def test_acquire_sleeps_until_the_reserved_slot(clock: VirtualClock) -> None:
    """The second acquire at rate=5 returns True after sleeping one interval (0.21 s)."""
    rl = limiter(clock, rate=5, burst=1)
    rl.acquire(max_wait=10)
    assert rl.acquire(max_wait=10) is True
    assert clock.slept == [pytest.approx(rl.interval)]


def test_acquire_refuses_at_once_when_the_slot_is_too_far(clock: VirtualClock) -> None:
    """acquire() returns False without sleeping when the wait would exceed max_wait."""
    rl = limiter(clock)
    rl.acquire(max_wait=10)
    assert rl.acquire(max_wait=0.5) is False
    assert clock.slept == []


def test_concurrent_starts_stay_within_rate_plus_burst_per_second(clock: VirtualClock) -> None:
    """Eight callers acquiring for 1.5 s at rate=20, burst=5: no 1 s window holds over 25 starts.

    In virtual time each start is exactly the slot granted, so this counts the limiter's slots.
    """
    rate, burst = 20, 5
    rl = limiter(clock, rate=rate, burst=burst)
    starts: list[float] = []
    deadline = clock.monotonic() + 1.5

    def call_engage() -> None:
        while clock.monotonic() < deadline:
            if rl.acquire(max_wait=2.0):
                starts.append(clock.now)
            else:
                clock.sleep(rl.wait_hint())

    clock.run([call_engage] * 8)
    starts.sort()
    busiest = max(sum(1 for s in starts[i:] if s - first <= 1.0) for i, first in enumerate(starts))
    # The limit must also let calls through: burst + 1.5 s of slots is 33 starts.
    assert len(starts) >= 30
    assert busiest <= rate + burst
