"""Which lanes have a worker: each worker says so every sweep interval, the sweep reads it.

A lane no worker consumes never moves: its sends wait, and republishing them (the sweep does so
for sends idle past the visibility timeout) only piles up copies. Workers record the lanes they
consume (``{p}:lane_consumers:{lane}``, a sorted set of worker names scored by when last seen,
on the Redis clock, never a worker's); the sweep warns about a lane with waiting sends and no
worker seen lately, and leaves its sends alone until one comes.
"""

from __future__ import annotations

from collections.abc import Iterable

import redis

from tasks.state.clock import server_time
from tasks.state.keys import RedisKeys
from tasks.state.records import text


class LaneConsumers:
    """Workers by the lanes they consume, as last reported."""

    def __init__(self, client: redis.Redis, *, keys: RedisKeys) -> None:
        self._redis = client
        self._keys = keys

    def seen(self, worker: str, lanes: Iterable[str], forget_after: float) -> None:
        """``worker`` consumes ``lanes`` now; reports older than ``forget_after`` s are dropped."""
        now = server_time(self._redis)
        pipe = self._redis.pipeline(transaction=False)
        for lane in lanes:
            key = self._keys.lane_consumers(lane)
            pipe.zadd(key, {worker: now})
            pipe.zremrangebyscore(key, "-inf", now - forget_after)
            pipe.expire(key, max(1, int(forget_after)))
        pipe.execute()

    def live(self, lane: str, within: float) -> list[str]:
        """Workers that reported consuming ``lane`` in the last ``within`` seconds."""
        since = server_time(self._redis) - within
        return [
            text(w)
            for w in self._redis.zrangebyscore(self._keys.lane_consumers(lane), since, "+inf")
        ]
