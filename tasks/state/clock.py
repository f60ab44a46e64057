"""The one clock every stored time is on: the Redis server's (``TIME``).

Workers run on many hosts whose clocks drift apart; leases, retry times, the sweep's idle limits
and the dead-letter bounds are compared across workers, so they are all read from Redis: inside
the Lua scripts (``redis.call('TIME')``) or, for a cutoff computed here, with :func:`server_time`.
"""

from __future__ import annotations

import redis


def server_time(client: redis.Redis) -> float:
    """The Redis server's time, epoch seconds."""
    seconds, microseconds = client.time()
    return float(seconds) + microseconds / 1_000_000
