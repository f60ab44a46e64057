"""Completion callbacks not yet published: an outbox, one sorted set of idempotency keys.

The scripts that record a final state (``lua/mark_sent.lua``, ``lua/dlq_add.lua``) add the key
here, scored by when, if its record names a callback (``on_done``), in the same step. The worker
that recorded it publishes the callback and then takes the key out (:meth:`CallbackOutbox.done`);
if it dies in between, the key stays, and the housekeeping sweep publishes it later
(:meth:`CallbackOutbox.stale`). So a callback is never published before its state is recorded,
and at least once after.
"""

from __future__ import annotations

import redis

from tasks.state import scripts
from tasks.state.clock import server_time
from tasks.state.keys import RedisKeys
from tasks.state.records import text


class CallbackOutbox:
    """Keys whose send reached a final state and whose callback is not yet published."""

    def __init__(self, client: redis.Redis, *, keys: RedisKeys) -> None:
        self._redis = client
        self._key = keys.callbacks
        self._done = scripts.register(client, "callback_done")

    def due_since(self, key: str) -> float | None:
        """When the callback of ``key`` became due (epoch seconds), or None when none is due."""
        score = self._redis.zscore(self._key, key)
        return None if score is None else float(score)

    def stale(self, older_than: float, limit: int = 1000) -> list[tuple[str, float]]:
        """Callbacks due for over ``older_than`` seconds (their publisher died), oldest first.

        Due times are on the Redis clock (the scripts that file them read ``TIME``); so is the
        cutoff.
        """
        cutoff = server_time(self._redis) - older_than
        rows: list[tuple[bytes | str, float]] = self._redis.zrangebyscore(  # type: ignore[assignment]  # redis-py types the reply loosely
            self._key, "-inf", cutoff, start=0, num=limit, withscores=True
        )
        return [(text(key), float(score)) for key, score in rows]

    def done(self, key: str, due_since: float) -> bool:
        """The callback that became due at ``due_since`` was published: drop it (if unchanged)."""
        return bool(self._done(keys=[self._key], args=[key, repr(due_since)]))

    def depth(self) -> int:
        """How many callbacks are waiting to be published."""
        return int(self._redis.zcard(self._key))
