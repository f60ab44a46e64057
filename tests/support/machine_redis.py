"""A read-only watch on the machine's Redis (127.0.0.1:6379), which belongs to someone else.

Nothing of this project may write to it or flush it, and this watch writes nothing either: when
something answers there, it notes the server's run id and how many ``FLUSHDB``/``FLUSHALL`` it has
run (``INFO commandstats``), and checks afterwards that the count did not move, unless the server
restarted meanwhile (a new run id: not ours to judge). Its owner's keys may come and go (they
expire, or its owner deletes them): only a flush is counted, never the keys themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import redis

from tasks.cli.local_stack import redis_answers

MACHINE_REDIS = "redis://127.0.0.1:6379/0"
FLUSHES = ("cmdstat_flushdb", "cmdstat_flushall")


def _flushes(client: redis.Redis) -> int:
    stats = client.info("commandstats")
    return sum(int(stats.get(name, {}).get("calls", 0)) for name in FLUSHES)


@contextmanager
def machine_watch(url: str = MACHINE_REDIS) -> Iterator[Callable[[], None]]:
    """Yield a check that raises AssertionError if the server ran a flush since the start."""
    if not redis_answers(url):
        yield lambda: None
        return
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    run_id = client.info("server")["run_id"]
    flushes = _flushes(client)

    def check() -> None:
        if client.info("server")["run_id"] != run_id:
            return  # restarted by its owner: what it ran since says nothing about us
        ran = _flushes(client) - flushes
        assert ran == 0, f"the Redis at {url} ran {ran} FLUSHDB/FLUSHALL during the tests"

    try:
        yield check
    finally:
        client.close()
