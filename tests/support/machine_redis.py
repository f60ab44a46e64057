"""A canary on the machine's Redis (127.0.0.1:6379), which belongs to someone else.

Nothing of this project may write to it or flush it. When something answers there, the canary
key is set before and read after; only the canary is ever deleted.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import redis

from tasks.cli.local_stack import redis_answers

MACHINE_REDIS = "redis://127.0.0.1:6379/0"
#: The canary outlives a crashed run by at most this long.
CANARY_TTL = 6 * 3600


@contextmanager
def machine_canary() -> Iterator[Callable[[], None]]:
    """Yield a check that raises AssertionError if the canary was flushed or changed."""
    if not redis_answers(MACHINE_REDIS):
        yield lambda: None
        return
    client = redis.Redis.from_url(MACHINE_REDIS, socket_connect_timeout=2)
    key, value = f"engage-sms-test-canary:{uuid.uuid4().hex}", uuid.uuid4().hex
    client.set(key, value, ex=CANARY_TTL)

    def check() -> None:
        found = client.get(key)
        assert found == value.encode(), f"the Redis on 127.0.0.1:6379 lost its canary {key}"

    try:
        yield check
    finally:
        client.delete(key)
        client.close()
