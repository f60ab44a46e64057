"""A read-only watch on the machine's Redis (127.0.0.1:6379), which belongs to someone else.

Nothing of this project may write to it or flush it, and this watch writes nothing either: when
something answers there, it notes the server's run id and which databases hold keys, and checks
afterwards that none of those was emptied (a ``FLUSHDB``/``FLUSHALL`` of ours would show), unless
the server restarted meanwhile (a new run id: not ours to judge).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import redis

from tasks.cli.local_stack import redis_answers

MACHINE_REDIS = "redis://127.0.0.1:6379/0"


def _databases_with_keys(client: redis.Redis) -> set[str]:
    return {db for db, stats in client.info("keyspace").items() if stats.get("keys", 0) > 0}


@contextmanager
def machine_watch(url: str = MACHINE_REDIS) -> Iterator[Callable[[], None]]:
    """Yield a check that raises AssertionError if a database that held keys was emptied."""
    if not redis_answers(url):
        yield lambda: None
        return
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    run_id = client.info("server")["run_id"]
    held = _databases_with_keys(client)

    def check() -> None:
        if client.info("server")["run_id"] != run_id:
            return  # restarted by its owner: what it holds now says nothing about us
        emptied = held - _databases_with_keys(client)
        assert not emptied, f"the Redis at {url} lost every key of {sorted(emptied)}"

    try:
        yield check
    finally:
        client.close()
