"""kombu's Redis transport, with one client object per channel instead of one per command.

kombu's Redis channel builds a new ``redis.Redis`` object for every publish, event and ack
(``Channel.conn_or_acquire``). With redis-py 8 that costs about 0.23 ms of CPU each (the client
copies its table of ~170 response callbacks on creation), twice per enqueue and about eight
times per delivered message: a fifth of an enqueue's CPU. A ``redis.Redis`` object holds no
connection of its own, it takes one from the pool per command and is safe to share between
threads (redis-py docs, "Advanced Features: A note about threading"; pipelines, which are not,
are still made per call by kombu), so this channel keeps one for as long as its pool lives.
Nothing else changes: same pool, same commands, same wire traffic (``docs/benchmarks.md`` has
the figures).

Used by ``celeryconfig.py`` for ``redis://`` brokers via ``broker_transport``. ``rediss://`` keeps
kombu's own transport: kombu enables TLS for a URL without ``broker_use_ssl`` only when the
transport is the one named ``rediss``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kombu.transport import redis as kombu_redis

#: What ``broker_transport`` names.
TRANSPORT = "tasks.worker.transport:Transport"


class Channel(kombu_redis.Channel):
    """A kombu Redis channel that reuses its synchronous client object."""

    _shared_client: Any = None
    _shared_client_pool: Any = None

    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        """The given client, else this channel's shared one (remade when the pool is)."""
        if client:
            yield client
            return
        pool = self.pool
        if self._shared_client is None or self._shared_client_pool is not pool:
            self._shared_client = self._create_client()  # type: ignore[no-untyped-call]
            self._shared_client_pool = pool
        yield self._shared_client


class Transport(kombu_redis.Transport):
    """kombu's Redis transport with :class:`Channel`."""

    Channel = Channel
