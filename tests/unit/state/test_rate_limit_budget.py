"""The Engage budget is one fact in Redis: workers configured differently keep the smallest."""

from __future__ import annotations

import fakeredis
import pytest

from tasks.sandbox.state import max_in_window
from tasks.state import rate_limit
from tasks.state.keys import RedisKeys
from tasks.state.rate_limit import Budget, RateLimiter
from tests.support.virtual_clock import VirtualClock

KEYS = RedisKeys("t")


def limiter(client: fakeredis.FakeRedis, rate: float, burst: float = 1) -> RateLimiter:
    """A limiter of one worker on the shared (fake) Redis."""
    return RateLimiter(client, keys=KEYS, rate=rate, burst=burst)


@pytest.mark.parametrize("rates", [(10, 40), (40, 10)], ids=["smaller-first", "larger-first"])
def test_the_smallest_budget_wins_whatever_the_order(rates: tuple[float, float]) -> None:
    """Workers started with 10/s and 40/s both keep 10/s, whichever agreed first."""
    client = fakeredis.FakeRedis()
    first, second = (limiter(client, rate) for rate in rates)
    first.agree()
    assert second.agree() == Budget(10, 1)
    assert first.stored() == Budget(10, 1)


def test_a_worker_without_a_limit_keeps_the_stored_one(clock: VirtualClock) -> None:
    """ENGAGE_RATE_LIMIT=0 skips nothing once another worker stored a budget."""
    client = fakeredis.FakeRedis()
    limiter(client, 10).agree()
    unlimited = limiter(client, 0)
    assert unlimited.agree() == Budget(10, 1)
    assert unlimited.reserve(max_wait=5) == 0.0
    assert unlimited.reserve(max_wait=5) == pytest.approx(0.105)


def test_mismatched_workers_stay_within_the_smallest_budget(clock: VirtualClock) -> None:
    """Slots booked by a 40/s, a 10/s and an unlimited worker: at most 10 in any second.

    The 40/s worker agreed before the 10/s one started and never agreed again: every
    reservation applies the stored budget, so it slows down at once. The clock stands still,
    so each delay is its slot's offset from one instant (on the real clock they drifted).
    """
    client = fakeredis.FakeRedis()
    fast = limiter(client, 40)
    fast.agree()
    slow, unlimited = limiter(client, 10), limiter(client, 0)
    slow.agree()
    starts: list[float] = []
    for worker in [fast, slow, unlimited] * 10:
        delay = worker.reserve(max_wait=10)
        assert delay is not None
        starts.append(delay)
    assert max_in_window(starts, 1.0) <= 10


def test_no_budget_is_stored_by_a_worker_without_a_limit() -> None:
    """A worker with rate 0 only reads: the first worker with a limit sets the budget."""
    client = fakeredis.FakeRedis()
    assert limiter(client, 0).agree() == Budget(0, 1)
    assert limiter(client, 0).stored() is None


def test_a_worker_without_a_limit_finds_a_budget_stored_later(
    monkeypatch: pytest.MonkeyPatch, clock: VirtualClock
) -> None:
    """Started before any budget was stored, it keeps to one stored later (looked for again
    every UNLIMITED_RECHECK seconds, not before every call)."""
    monkeypatch.setattr(rate_limit, "UNLIMITED_RECHECK", 0.0)
    client = fakeredis.FakeRedis()
    unlimited = limiter(client, 0)
    assert [unlimited.reserve(max_wait=5) for _ in range(3)] == [0.0, 0.0, 0.0]
    limiter(client, 10).agree()
    delays = [unlimited.reserve(max_wait=5) for _ in range(3)]
    assert delays[1] == pytest.approx(0.105)
