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
"""

from __future__ import annotations

import math
import time

import redis

from tasks.state import scripts
from tasks.state.keys import RedisKeys

#: Extra spacing between slots, as a share of one second, for callers that start late: 50 ms
#: per second keeps ``rate + 1`` calls out of any one-second window unless one caller starts
#: 50 ms later than the one ``rate`` slots before it. The price: at most ``rate / 1.05`` calls/s.
JITTER_ALLOWANCE = 0.05


class RateLimiter:
    """Hands out start times for Engage calls, at most ``rate`` per second plus ``burst``."""

    def __init__(self, client: redis.Redis, *, keys: RedisKeys, rate: float, burst: float) -> None:
        self._key = keys.rate_limit
        self._unlimited = rate <= 0
        if not self._unlimited and burst < 1:
            raise ValueError(f"burst must be at least 1, got {burst!r}")
        # Rounding the interval up and the tolerance down keeps the bound on the strict side.
        self._interval_us = (
            0 if self._unlimited else math.ceil(1_000_000 * (1 + JITTER_ALLOWANCE) / rate)
        )
        self._tolerance_us = int(burst * self._interval_us)
        self._script = scripts.register(client, "gcra")

    @property
    def interval(self) -> float:
        """Seconds between two slots (0 when unlimited)."""
        return self._interval_us / 1_000_000

    def reserve(self, max_wait: float) -> float | None:
        """Reserve the next slot if it is within ``max_wait`` s: seconds to sleep, or None."""
        if self._unlimited:
            return 0.0
        granted, delay_us = self._run(max_wait, reserve=True)
        return delay_us / 1_000_000 if granted else None

    def wait_hint(self) -> float:
        """Seconds until the next slot, without reserving it (a countdown for a retry)."""
        if self._unlimited:
            return 0.0
        return self._run(0.0, reserve=False)[1] / 1_000_000

    def acquire(self, max_wait: float) -> bool:
        """Reserve a slot and sleep until it; False, at once, when it is beyond ``max_wait``."""
        delay = self.reserve(max_wait)
        if delay is None:
            return False
        if delay > 0:
            time.sleep(delay)
        return True

    def _run(self, max_wait: float, *, reserve: bool) -> tuple[bool, int]:
        granted, delay_us = self._script(
            keys=[self._key],
            args=[
                self._interval_us,
                self._tolerance_us,
                max(0, int(max_wait * 1_000_000)),
                "1" if reserve else "0",
            ],
        )
        return bool(granted), int(delay_us)
