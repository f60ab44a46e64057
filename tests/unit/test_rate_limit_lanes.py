"""Priority lanes of the rate limit: who may book which slot, on a clock the test moves.

fakeredis reads ``time.time()`` for TIME (the limiter's clock) and for key expiry; the ``clock``
fixture replaces both with a :class:`Clock`, so each test says exactly when every call happens.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from dataclasses import dataclass
from types import SimpleNamespace

import fakeredis
import pytest
import redis
from fakeredis._socket import _base as fakeredis_socket
from fakeredis.commands_mixins import server_mixin

from tasks.send_options import Priority
from tasks.state.keys import RedisKeys
from tasks.state.rate_limit import STARVATION_LIMIT, RateLimiter

URGENT, NORMAL, BULK = Priority.URGENT, Priority.NORMAL, Priority.BULK
#: Urgent's look-ahead (ENGAGE_RATE_MAX_WAIT) in these tests.
MAX_WAIT = 5.0
#: The real clock is read between calls in the tests that do not move it.
SLACK = 0.05


@dataclass
class Clock:
    """Epoch seconds that move only when the test says so."""

    now: float = 1_800_000_000.0

    def time(self) -> float:
        """What fakeredis reads as the time."""
        return self.now

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass."""
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """fakeredis' TIME and key expiry on a clock the test moves."""
    fake = Clock()
    monkeypatch.setattr(server_mixin, "time", SimpleNamespace(time=fake.time))
    monkeypatch.setattr(fakeredis_socket, "time", SimpleNamespace(time=fake.time))
    return fake


def limiter(client: redis.Redis | None = None, *, rate: float = 10) -> RateLimiter:
    """A limiter at ``rate`` calls/s (slots 105 ms apart at 10/s), burst 1, on fakeredis."""
    return RateLimiter(client or fakeredis.FakeRedis(), keys=RedisKeys("t"), rate=rate, burst=1)


def test_each_lane_books_only_as_far_ahead_as_its_look_ahead(clock: Clock) -> None:
    """Bulk books the next slot only, normal up to two slots ahead, urgent up to max_wait."""
    rl = limiter()
    t = rl.interval
    assert rl.reserve(MAX_WAIT, BULK) == 0.0
    assert rl.reserve(MAX_WAIT, NORMAL) == pytest.approx(t)
    # The next free slot is two slots away: beyond bulk's reach, within normal's.
    assert rl.reserve(MAX_WAIT, BULK) is None
    assert rl.reserve(MAX_WAIT, NORMAL) == pytest.approx(2 * t)
    # Three slots away: only urgent may book it.
    assert rl.reserve(MAX_WAIT, NORMAL) is None
    assert rl.reserve(MAX_WAIT, URGENT) == pytest.approx(3 * t)


def test_urgent_takes_the_next_slot_while_bulk_waits_for_it(clock: Clock) -> None:
    """A bulk call refused a slot gets the one after the urgent call that arrived meanwhile."""
    rl = limiter()
    t = rl.interval
    rl.reserve(MAX_WAIT, BULK)
    rl.reserve(MAX_WAIT, URGENT)
    assert rl.reserve(MAX_WAIT, BULK) is None  # waiting: the free slot (2t) is out of reach
    clock.advance(t)  # the slot at 2t comes within bulk's reach, but urgent asks first
    assert rl.reserve(MAX_WAIT, URGENT) == pytest.approx(t)
    assert rl.reserve(MAX_WAIT, BULK) is None
    clock.advance(t)
    assert rl.reserve(MAX_WAIT, BULK) == pytest.approx(t)  # the slot at 3t


def test_normal_is_served_before_bulk(clock: Clock) -> None:
    """When a slot comes within normal's reach it is not yet within bulk's: normal books it."""
    rl = limiter()
    t = rl.interval
    rl.reserve(MAX_WAIT, BULK)
    rl.reserve(MAX_WAIT, NORMAL)
    rl.reserve(MAX_WAIT, URGENT)  # next free slot: 3t
    clock.advance(t)  # 2t away: normal's reach, not bulk's
    assert rl.reserve(MAX_WAIT, BULK) is None
    assert rl.reserve(MAX_WAIT, NORMAL) == pytest.approx(2 * t)


def test_bulk_alone_gets_every_slot(clock: Clock) -> None:
    """With no urgent or normal calls, a bulk caller asking when told gets slots back to back."""
    rl = limiter()
    t = rl.interval
    slots: list[float] = []
    while len(slots) < 20:
        delay = rl.reserve(MAX_WAIT, BULK)
        if delay is None:
            clock.advance(rl.wait_hint() - t)  # what acquire() sleeps: until it is in reach
        else:
            slots.append(clock.now + delay)
    gaps = [b - a for a, b in itertools.pairwise(slots)]
    assert gaps == pytest.approx([t] * 19)


def test_a_starved_lower_lane_books_as_far_ahead_as_urgent(clock: Clock) -> None:
    """Normal given no slot for a second books any slot within max_wait, once, then waits again."""
    rl = limiter()
    rl.reserve(MAX_WAIT, NORMAL)
    while rl.reserve(MAX_WAIT, URGENT) is not None:  # urgent fills the next five seconds
        pass
    assert rl.reserve(MAX_WAIT, NORMAL) is None
    clock.advance(STARVATION_LIMIT[NORMAL] - 0.1)
    assert rl.reserve(MAX_WAIT, NORMAL) is None  # not starved yet
    clock.advance(0.2)
    assert rl.reserve(MAX_WAIT, NORMAL) is not None  # starved: booked like an urgent call
    assert rl.reserve(MAX_WAIT, NORMAL) is None  # served: its own look-ahead again


def test_bulk_starves_longer_than_normal_before_it_is_lifted(clock: Clock) -> None:
    """Bulk's starvation limit is longer than normal's: at 1.1 s without a slot it still waits."""
    rl = limiter()
    rl.reserve(MAX_WAIT, BULK)
    while rl.reserve(MAX_WAIT, URGENT) is not None:
        pass
    clock.advance(STARVATION_LIMIT[NORMAL] + 0.1)
    assert rl.reserve(MAX_WAIT, BULK) is None
    clock.advance(STARVATION_LIMIT[BULK] - STARVATION_LIMIT[NORMAL])
    assert rl.reserve(MAX_WAIT, BULK) is not None


def test_waiting_bulk_call_sleeps_until_a_slot_comes_within_reach() -> None:
    """acquire() for bulk, four slots behind, waits in-process and returns as its slot starts."""
    rl = limiter()
    rl.agree()
    # The slots count from the first booking: timed from there, slow bookings do not matter.
    started = time.monotonic()
    rl.reserve(MAX_WAIT, BULK)  # served just now: not starved
    for _ in range(3):
        rl.reserve(MAX_WAIT, URGENT)
    assert rl.acquire(MAX_WAIT, BULK) is True
    assert time.monotonic() - started == pytest.approx(4 * rl.interval, abs=SLACK)


def test_waiting_lower_lane_gives_up_after_max_wait() -> None:
    """A bulk call that cannot get a slot within max_wait in all returns False by then."""
    rl = limiter()
    rl.reserve(MAX_WAIT, BULK)
    while rl.reserve(2.0, URGENT) is not None:  # two seconds of urgent bookings
        pass
    started = time.monotonic()
    assert rl.acquire(0.3, BULK) is False
    assert time.monotonic() - started <= 0.3 + SLACK


def test_urgent_call_beyond_max_wait_is_refused_at_once() -> None:
    """Urgent never waits in a loop: a slot beyond max_wait is refused without sleeping."""
    rl = limiter()
    while rl.reserve(1.0, URGENT) is not None:
        pass
    started = time.monotonic()
    assert rl.acquire(1.0, URGENT) is False
    assert time.monotonic() - started < SLACK


def test_mixed_lanes_stay_within_the_budget_in_every_second(real_redis: redis.Redis) -> None:
    """Nine threads, three per lane, acquiring for 1.5 s at rate 20: no 1 s window over 20."""
    rate = 20
    keys = RedisKeys(f"test-{uuid.uuid4().hex}")
    rl = RateLimiter(real_redis, keys=keys, rate=rate, burst=1)
    starts: list[tuple[float, Priority]] = []
    barrier = threading.Barrier(9)
    deadline = time.monotonic() + 1.5

    def call_engage(lane: Priority) -> None:
        barrier.wait()
        while time.monotonic() < deadline:
            if rl.acquire(1.0, lane):
                starts.append((time.monotonic(), lane))
            else:
                time.sleep(0.01)

    threads = [
        threading.Thread(target=call_engage, args=(lane,)) for lane in Priority for _ in "abc"
    ]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        real_redis.delete(keys.rate_limit, *(keys.rate_served(lane) for lane in Priority))
    times = sorted(s for s, _ in starts)
    busiest = max(sum(1 for s in times[i:] if s - first <= 1.0) for i, first in enumerate(times))
    assert busiest <= rate
    assert len(times) >= 28  # 1.5 s of slots 52.5 ms apart, plus the first at once
