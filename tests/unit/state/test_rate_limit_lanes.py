"""Priority lanes of the rate limit: who may book which slot, on a clock the test moves.

fakeredis reads ``time.time()`` for TIME (the limiter's clock) and for key expiry; the ``clock``
fixture replaces both with a :class:`VirtualClock`, and the limiters sleep and time themselves on
it too, so each test says exactly when every call happens and none waits for real.
"""

from __future__ import annotations

import functools
import itertools

import fakeredis
import pytest

from tasks.core.send_options import Priority
from tasks.state.keys import RedisKeys
from tasks.state.rate_limit import STARVATION_LIMIT, RateLimiter
from tests.support.virtual_clock import VirtualClock

URGENT, NORMAL, BULK = Priority.URGENT, Priority.NORMAL, Priority.BULK
#: Urgent's look-ahead (ENGAGE_RATE_MAX_WAIT) in these tests.
MAX_WAIT = 5.0
#: The limiter's resolution (µs), within which a float epoch on the virtual clock is exact.
US = 1e-6


def limiter(clock: VirtualClock, *, rate: float = 10) -> RateLimiter:
    """A limiter at ``rate`` calls/s (slots 105 ms apart at 10/s), burst 1, on fakeredis."""
    return RateLimiter(
        fakeredis.FakeRedis(),
        keys=RedisKeys("t"),
        rate=rate,
        burst=1,
        sleep=clock.sleep,
        monotonic=clock.monotonic,
    )


def test_each_lane_books_only_as_far_ahead_as_its_look_ahead(clock: VirtualClock) -> None:
    """Bulk books the next slot only, normal up to two slots ahead, urgent up to max_wait."""
    rl = limiter(clock)
    t = rl.interval
    assert rl.reserve(MAX_WAIT, BULK) == 0.0
    assert rl.reserve(MAX_WAIT, NORMAL) == pytest.approx(t)
    # The next free slot is two slots away: beyond bulk's reach, within normal's.
    assert rl.reserve(MAX_WAIT, BULK) is None
    assert rl.reserve(MAX_WAIT, NORMAL) == pytest.approx(2 * t)
    # Three slots away: only urgent may book it.
    assert rl.reserve(MAX_WAIT, NORMAL) is None
    assert rl.reserve(MAX_WAIT, URGENT) == pytest.approx(3 * t)


def test_urgent_takes_the_next_slot_while_bulk_waits_for_it(clock: VirtualClock) -> None:
    """A bulk call refused a slot gets the one after the urgent call that arrived meanwhile."""
    rl = limiter(clock)
    t = rl.interval
    rl.reserve(MAX_WAIT, BULK)
    rl.reserve(MAX_WAIT, URGENT)
    assert rl.reserve(MAX_WAIT, BULK) is None  # waiting: the free slot (2t) is out of reach
    clock.advance(t)  # the slot at 2t comes within bulk's reach, but urgent asks first
    assert rl.reserve(MAX_WAIT, URGENT) == pytest.approx(t)
    assert rl.reserve(MAX_WAIT, BULK) is None
    clock.advance(t)
    assert rl.reserve(MAX_WAIT, BULK) == pytest.approx(t)  # the slot at 3t


def test_normal_is_served_before_bulk(clock: VirtualClock) -> None:
    """When a slot comes within normal's reach it is not yet within bulk's: normal books it."""
    rl = limiter(clock)
    t = rl.interval
    rl.reserve(MAX_WAIT, BULK)
    rl.reserve(MAX_WAIT, NORMAL)
    rl.reserve(MAX_WAIT, URGENT)  # next free slot: 3t
    clock.advance(t)  # 2t away: normal's reach, not bulk's
    assert rl.reserve(MAX_WAIT, BULK) is None
    assert rl.reserve(MAX_WAIT, NORMAL) == pytest.approx(2 * t)


def test_bulk_alone_gets_every_slot(clock: VirtualClock) -> None:
    """With no urgent or normal calls, a bulk caller asking when told gets slots back to back."""
    rl = limiter(clock)
    t = rl.interval
    slots: list[float] = []
    while len(slots) < 20:
        delay = rl.reserve(MAX_WAIT, BULK)
        if delay is None:
            clock.advance(rl.wait_hint() - t)  # what acquire() sleeps: until it is in reach
        else:
            slots.append(clock.now + delay)
    gaps = [b - a for a, b in itertools.pairwise(slots)]
    assert gaps == pytest.approx([t] * 19, abs=US)


def test_a_starved_lower_lane_books_as_far_ahead_as_urgent(clock: VirtualClock) -> None:
    """Normal given no slot for a second books any slot within max_wait, once, then waits again."""
    rl = limiter(clock)
    rl.reserve(MAX_WAIT, NORMAL)
    while rl.reserve(MAX_WAIT, URGENT) is not None:  # urgent fills the next five seconds
        pass
    assert rl.reserve(MAX_WAIT, NORMAL) is None
    clock.advance(STARVATION_LIMIT[NORMAL] - 0.1)
    assert rl.reserve(MAX_WAIT, NORMAL) is None  # not starved yet
    clock.advance(0.2)
    assert rl.reserve(MAX_WAIT, NORMAL) is not None  # starved: booked like an urgent call
    assert rl.reserve(MAX_WAIT, NORMAL) is None  # served: its own look-ahead again


def test_bulk_starves_longer_than_normal_before_it_is_lifted(clock: VirtualClock) -> None:
    """Bulk's starvation limit is longer than normal's: at 1.1 s without a slot it still waits."""
    rl = limiter(clock)
    rl.reserve(MAX_WAIT, BULK)
    while rl.reserve(MAX_WAIT, URGENT) is not None:
        pass
    clock.advance(STARVATION_LIMIT[NORMAL] + 0.1)
    assert rl.reserve(MAX_WAIT, BULK) is None
    clock.advance(STARVATION_LIMIT[BULK] - STARVATION_LIMIT[NORMAL])
    assert rl.reserve(MAX_WAIT, BULK) is not None


def test_waiting_bulk_call_sleeps_until_a_slot_comes_within_reach(clock: VirtualClock) -> None:
    """acquire() for bulk, four slots behind, waits in-process and returns as its slot starts."""
    rl = limiter(clock)
    started = clock.now
    rl.reserve(MAX_WAIT, BULK)  # served just now: not starved
    for _ in range(3):
        rl.reserve(MAX_WAIT, URGENT)
    assert rl.acquire(MAX_WAIT, BULK) is True
    assert clock.now - started == pytest.approx(4 * rl.interval, abs=US)


def test_waiting_lower_lane_gives_up_after_max_wait(clock: VirtualClock) -> None:
    """A bulk call that cannot get a slot within max_wait in all returns False by then."""
    rl = limiter(clock)
    rl.reserve(MAX_WAIT, BULK)
    while rl.reserve(2.0, URGENT) is not None:  # two seconds of urgent bookings
        pass
    started = clock.now
    assert rl.acquire(0.3, BULK) is False
    assert clock.now - started <= 0.3


def test_urgent_call_beyond_max_wait_is_refused_at_once(clock: VirtualClock) -> None:
    """Urgent never waits in a loop: a slot beyond max_wait is refused without sleeping."""
    rl = limiter(clock)
    while rl.reserve(1.0, URGENT) is not None:
        pass
    assert rl.acquire(1.0, URGENT) is False
    assert clock.slept == []


def test_mixed_lanes_stay_within_the_budget_in_every_second(clock: VirtualClock) -> None:
    """Nine callers, three per lane, acquiring for 1.5 s at rate 20: no 1 s window over 20.

    The callers run in virtual time, so each start is exactly the slot the limiter granted:
    the count is of the limiter's own slots, never of timestamps taken late under load.
    """
    rate = 20
    rl = limiter(clock, rate=rate)
    starts: list[tuple[float, Priority]] = []
    deadline = clock.monotonic() + 1.5

    def call_engage(lane: Priority) -> None:
        while clock.monotonic() < deadline:
            if rl.acquire(1.0, lane):
                starts.append((clock.now, lane))
            else:
                clock.sleep(0.01)

    clock.run([functools.partial(call_engage, lane) for lane in Priority for _ in "abc"])
    times = sorted(s for s, _ in starts)
    busiest = max(sum(1 for s in times[i:] if s - first <= 1.0) for i, first in enumerate(times))
    assert busiest <= rate
    assert len(times) >= 28  # 1.5 s of slots 52.5 ms apart, plus the first at once
    assert {lane for _, lane in starts} == set(Priority)  # every lane was served
