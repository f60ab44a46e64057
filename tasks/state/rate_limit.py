"""A global rate limit on Engage calls: one Redis string per limit, the next free slot (GCRA).

The string holds the *theoretical arrival time* (TAT) of the generic cell rate algorithm, in
microseconds of the Redis server's clock, so every worker process and host shares one schedule
whatever its own clock says. A caller reserves a slot atomically (one Lua script,
``lua/gcra.lua``, one round trip) and sleeps until it; a caller whose slot would be too far away
reserves nothing and is retried later by Celery.

Slots are :data:`JITTER_ALLOWANCE` more than ``1 / rate`` apart: ``T = (1 + JITTER_ALLOWANCE) /
rate``. The guarantee: the slots handed out (start times on the Redis clock) satisfy, for every
closed interval of ``W`` seconds, ``count <= burst + W / T``. So at most ``burst`` calls start at
the same instant, and with ``burst=1`` no one-second window holds more than ``rate`` slots, with
50 ms to spare. Proof sketch: each reservation pushes the TAT on by at least ``T`` and starts no
earlier than ``TAT - burst * T`` and no later than ``TAT - T``. Callers start at their slot or a
little after (the reply's latency, the sleep's overshoot, the GIL), never before; the allowance
is there so that this lateness does not put ``rate + 1`` calls into one second as Engage counts
them (measured locally: up to 42 ms of lateness between two calls).

Lanes. A call names its lane (:class:`tasks.core.send_options.Priority`), and the lane decides only
*how far ahead* it may book: urgent up to ``max_wait`` (``ENGAGE_RATE_MAX_WAIT``, 5 s), normal
:data:`LOOKAHEAD_INTERVALS` = 2 slots, bulk 1 slot. A lower-lane call that finds the next free
slot beyond its look-ahead books nothing and sleeps until that slot comes within reach, then asks
again (:meth:`RateLimiter.acquire`, at most ``max_wait`` in all). So every slot is open to a
waiting urgent call first, two slots before it starts to normal and one slot before to bulk: a
waiting call of a higher lane has already taken it by the time a lower lane may, in every worker
process, and a lower-lane booking delays an urgent call by at most one or two slots. Since the
lane changes only *whether* a booking is made, never *where* (still the TAT, still pushing it
by ``T``), the bound above holds for every mix of lanes.

Starvation. While urgent calls take every slot, a lower lane would never get one. So each lower
lane's last booking is kept (``{p}:rate:engage:served:{lane}``); a lane that has booked nothing
for :data:`STARVATION_LIMIT` (normal 1 s, bulk 2 s) books as far ahead as urgent, competing
with urgent calls as an equal, until it is served. A lower lane with callers waiting therefore
gets at least about one call per second (normal) or per two seconds (bulk) whatever the lanes
above it send.

One budget. Workers configured with different ``ENGAGE_RATE_LIMIT`` values must not add up to
more than the smallest: the budget is kept in Redis (``{p}:rate:budget``). Each limiter agrees on
it before its first slot (:meth:`RateLimiter.agree`, also called at a worker's start, which logs
a mismatch loudly): the stored budget, or its own when that is smaller. And every reservation
applies the stored budget whenever it is slower than the limiter's own, so a worker started later
with a smaller budget slows every running worker at once, and a worker configured without a limit
(``0``) still keeps the stored one (looking for one at most once a second while none is stored).
To raise the budget: stop the workers, delete the key, start them with the new value.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

from tasks.core.send_options import Priority
from tasks.state import scripts
from tasks.state.keys import RedisKeys
from tasks.state.records import text

#: Extra spacing between slots, as a share of one second, for callers that start late: 50 ms
#: per second keeps ``rate + 1`` calls out of any one-second window unless one caller starts
#: 50 ms later than the one ``rate`` slots before it. The price: at most ``rate / 1.05`` calls/s.
JITTER_ALLOWANCE = 0.05
#: How many slots ahead a lower-lane call may book (urgent: up to ``max_wait``). Normal's two to
#: bulk's one is what puts normal first: a slot is within normal's reach one slot before bulk's.
LOOKAHEAD_INTERVALS = {Priority.NORMAL: 2, Priority.BULK: 1}
#: Seconds a lower lane may go without a booking before it books as far ahead as urgent.
STARVATION_LIMIT = {Priority.NORMAL: 1.0, Priority.BULK: 2.0}
#: Shortest pause between two tries of a waiting lower-lane call (no spinning on a lost race).
MIN_POLL = 0.002
#: A worker without a limit of its own looks for a stored budget this often (seconds) while
#: none is stored, instead of asking Redis before every call.
UNLIMITED_RECHECK = 1.0


@dataclass(frozen=True)
class Budget:
    """An Engage budget: ``rate`` calls per second (0: none of its own), ``burst`` at once."""

    rate: float
    burst: float

    def __str__(self) -> str:
        return "no limit" if self.rate <= 0 else f"{self.rate:g}/s (burst {self.burst:g})"


class RateLimiter:
    """Hands out start times for Engage calls, at most ``rate`` per second plus ``burst``.

    ``sleep`` and ``monotonic`` are the process's own waiting and timing (the slots themselves
    are on the Redis clock); tests pass a virtual clock's.
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        keys: RedisKeys,
        rate: float,
        burst: float,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sleep = sleep
        self._monotonic = monotonic
        self._key = keys.rate_limit
        self._keys = keys
        if rate > 0 and burst < 1:
            raise ValueError(f"burst must be at least 1, got {burst!r}")
        self.configured = Budget(max(rate, 0.0), burst)
        self._own = _spacing(self.configured)
        self._interval_us, self._tolerance_us = self._own
        self._agreed: Budget | None = None
        self._recheck_at = 0.0
        self._script = scripts.register(client, "gcra")
        self._agree = scripts.register(client, "rate_budget")
        self._client = client

    def agree(self) -> Budget:
        """Agree on the one budget with every other worker: the stored one, or ours if smaller.

        Returns the budget in force (this limiter's own when none is stored and it has one).
        """
        rate, burst = self._agree(
            keys=[self._keys.rate_budget],
            args=[repr(self.configured.rate), repr(self.configured.burst), *self._own],
        )
        agreed = self.configured if rate is None else Budget(float(text(rate)), float(text(burst)))
        # Book with the agreed spacing: the lanes' look-ahead is counted in its slots.
        self._interval_us, self._tolerance_us = _spacing(agreed)
        self._agreed = agreed
        return agreed

    def stored(self) -> Budget | None:
        """The budget kept in Redis, or None (for ``doctor``; agrees on nothing)."""
        rate, burst = self._client.hmget(self._keys.rate_budget, ["rate", "burst"])
        return None if rate is None else Budget(float(text(rate)), float(text(burst)))

    @property
    def interval(self) -> float:
        """Seconds between two slots (0 when unlimited)."""
        return self._interval_us / 1_000_000

    def _ensure_agreed(self) -> None:
        if self._agreed is None:
            self.agree()
        elif self._interval_us == 0 and self._monotonic() >= self._recheck_at:
            # No budget was stored when this worker without a limit of its own agreed: look
            # again now and then, rather than with a round trip per call.
            self._recheck_at = self._monotonic() + UNLIMITED_RECHECK
            self.agree()

    def reserve(self, max_wait: float, lane: Priority = Priority.URGENT) -> float | None:
        """Book the next slot if ``lane`` may (see the module): seconds to sleep, or None.

        Urgent books any slot within ``max_wait`` s; normal and bulk only the slots within their
        look-ahead (or within ``max_wait`` once starved).
        """
        granted, delay, _ = self._run(max_wait, lane, reserve=True)
        return delay if granted else None

    def wait_hint(self) -> float:
        """Seconds until the next slot, without reserving it (a countdown for a retry)."""
        return self._run(0.0, Priority.URGENT, reserve=False)[1]

    def acquire(self, max_wait: float, lane: Priority = Priority.URGENT) -> bool:
        """Book a slot for a call of ``lane`` and sleep until it; False when there is none.

        Urgent asks once: False, at once, when the next slot is beyond ``max_wait``. Normal and
        bulk wait for a slot to come within their look-ahead, asking again each time one might
        have, and give up (False) when that would take more than ``max_wait`` in all.
        """
        deadline = self._monotonic() + max_wait
        while True:
            granted, delay, lookahead = self._run(max_wait, lane, reserve=True)
            if granted:
                if delay > 0:
                    self._sleep(delay)
                return True
            if lane is Priority.URGENT:
                return False
            # The next free slot comes within reach in delay - lookahead seconds, unless a
            # higher lane takes it meanwhile (then the next try sees the one after). Waiters
            # spread over the first half of their reach, rather than all waking at once just
            # as the slot before starts (its caller needs the CPU then).
            spread = random.uniform(0, min(lookahead, self.interval) / 2)
            pause = max(delay - lookahead + spread, MIN_POLL)
            if self._monotonic() + pause > deadline:
                return False
            self._sleep(pause)

    def _run(self, max_wait: float, lane: Priority, *, reserve: bool) -> tuple[bool, float, float]:
        """One script call: granted, seconds until the slot, and the look-ahead that applied."""
        self._ensure_agreed()
        if self._interval_us == 0:
            return True, 0.0, 0.0  # no budget anywhere (checked within UNLIMITED_RECHECK)
        max_wait_us = max(0, int(max_wait * 1_000_000))
        keys = [self._key, self._keys.rate_budget]
        args: list[int | str] = [self._interval_us, self._tolerance_us]
        if lane is Priority.URGENT:
            args += [max_wait_us, "1" if reserve else "0"]
        else:
            keys.append(self._keys.rate_served(lane))
            lookahead_us = min(max_wait_us, LOOKAHEAD_INTERVALS[lane] * self._interval_us)
            args += [
                lookahead_us,
                "1" if reserve else "0",
                int(STARVATION_LIMIT[lane] * 1_000_000),
                max_wait_us,
            ]
        granted, delay_us, lookahead = self._script(keys=keys, args=args)
        return bool(granted), int(delay_us) / 1_000_000, int(lookahead) / 1_000_000


def _spacing(budget: Budget) -> tuple[int, int]:
    """Interval and tolerance (µs) of ``budget``'s slots; (0, 0) for no limit."""
    if budget.rate <= 0:
        return 0, 0
    # Rounding the interval up and the tolerance down keeps the bound on the strict side.
    interval = math.ceil(1_000_000 * (1 + JITTER_ALLOWANCE) / budget.rate)
    return interval, int(budget.burst * interval)
