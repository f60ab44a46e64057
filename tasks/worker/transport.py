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

Used by :mod:`tasks.worker.config` for ``redis://`` and ``sentinel://`` brokers via
``broker_transport``. ``rediss://`` keeps kombu's own transport: kombu enables TLS for a URL
without ``broker_use_ssl`` only when the transport is the one named ``rediss``.

Priority lanes (:mod:`tasks.core.send_options`) take two more things here:

- **Which queue a fetch looks at first** (:class:`LaneCycle`, kombu's ``queue_order_strategy``):
  kombu's default rotates between a worker's queues, so an urgent message waits its turn behind
  bulk ones. A worker's ``BRPOP`` lists the lanes highest first instead, so it takes an urgent
  message whenever one waits; one fetch in :data:`FETCH_SHARE_EVERY` lists them starting from
  the next lower lane instead, so a lane below a never-empty one is still fetched from.
No thread is held back for higher lanes: at 16 threads that changes nothing measurable, and
fetch-time bookkeeping of that kind can leave a worker hung after a Redis restart
(``tests/integration/test_recovery.py``; CHANGELOG.md has what such a reserve measured).

**The broker's clock** (:class:`BrokerClock`): kombu stamps each delivered message with the
worker's ``time()`` and hands it out again once it is older than the visibility timeout by the
restoring worker's ``time()``. A worker whose clock runs ahead would hand out messages that
other workers are still running; one behind would have its own restored early. kombu's Redis
module reads the clock through its global ``time``, which this transport points at the broker
Redis's clock (``TIME``, as an offset re-measured at most once a minute, so no extra round trip
per message), like every time the ledger compares.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import redis
from kombu.connection import Connection as KombuConnection
from kombu.transport import redis as kombu_redis

from tasks.core.send_options import Priority, lane_of_queue

#: What ``broker_transport`` names.
TRANSPORT = "tasks.worker.transport:Transport"
#: What ``broker_transport`` names for a ``sentinel://`` broker.
SENTINEL_TRANSPORT = "tasks.worker.transport:SentinelTransport"
#: What ``queue_order_strategy`` names (any kombu Redis transport reads it).
LANE_CYCLE = "tasks.worker.transport:LaneCycle"
#: One fetch in this many lists the lanes from the next lower one (each lower lane goes first
#: once in so many fetches): a lower lane behind a never-empty one is still fetched from.
FETCH_SHARE_EVERY = 10
_LANE_SUFFIXES = tuple(f".{p.value}" for p in Priority)


def _rank(queue: str) -> float:
    """Lanes highest first (any deployment's); a queue that is no lane ranks beside normal."""
    return lane_of_queue(queue).rank if queue.endswith(_LANE_SUFFIXES) else 1.5


class LaneCycle:
    """kombu's queue order for a ``BRPOP``: lanes highest first, lower ones first now and then.

    Implements kombu's cycle protocol (``update``, ``consume``, ``rotate``).
    """

    def __init__(self, it: Iterable[str] | None = None) -> None:
        self.items: list[str] = list(it) if it is not None else []
        self._fetches = 0

    def update(self, it: Iterable[str]) -> None:
        """The queues this channel consumes."""
        self.items[:] = it

    def consume(self, n: int) -> list[str]:
        """The queues of the next fetch, in the order ``BRPOP`` should look at them."""
        queues = sorted(self.items[:n], key=_rank)
        self._fetches += 1
        turn = self._fetches % FETCH_SHARE_EVERY
        if len(queues) > 1 and turn in _SHARE_TURNS:
            shift = _SHARE_TURNS[turn] % len(queues)
            queues = queues[shift:] + queues[:shift]
        return queues

    def rotate(self, last_used: str) -> None:
        """kombu calls this after each fetch; the order does not depend on the last queue."""


#: Which fetches of each FETCH_SHARE_EVERY start from a lower lane, and how many lanes lower.
_SHARE_TURNS = {FETCH_SHARE_EVERY // 2: 1, 0: 2}


#: Seconds between two measurements of the broker clock's offset.
CLOCK_REMEASURE = 60.0


class BrokerClock:
    """This machine's ``time.time()`` plus its offset to the broker Redis's clock."""

    def __init__(self) -> None:
        self.offset = 0.0
        self._measured_at: float | None = None

    def __call__(self) -> float:
        """Now, on the broker's clock."""
        return time.time() + self.offset

    def measure(self, client: Any) -> None:
        """Measure the offset (``TIME``), unless it was measured within the last minute."""
        if self._measured_at is not None and (
            time.monotonic() - self._measured_at < CLOCK_REMEASURE
        ):
            return
        before = time.time()
        seconds, microseconds = client.time()
        after = time.time()
        self.offset = seconds + microseconds / 1_000_000 - (before + after) / 2
        self._measured_at = time.monotonic()


BROKER_CLOCK = BrokerClock()


class QoS(kombu_redis.QoS):
    """kombu's unacknowledged-message bookkeeping, on the broker's clock."""

    def restore_visible(self, *args: Any, **kwargs: Any) -> Any:
        """Re-measure the clock (at most once a minute), then restore what timed out."""
        with contextlib.suppress(redis.RedisError), self.channel.conn_or_acquire() as client:
            BROKER_CLOCK.measure(client)
        return super().restore_visible(*args, **kwargs)  # type: ignore[no-untyped-call]  # kombu


class Channel(kombu_redis.Channel):
    """A kombu Redis channel that reuses its synchronous client object."""

    QoS = QoS
    _shared_client: Any = None
    _shared_client_pool: Any = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]  # kombu
        # kombu's Redis module stamps and restores messages by its global time(): ours from now.
        kombu_redis.time = BROKER_CLOCK  # type: ignore[attr-defined]  # kombu's module global
        with contextlib.suppress(redis.RedisError), self.conn_or_acquire() as client:
            BROKER_CLOCK.measure(client)

    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        """The given client, else this channel's shared one (remade when the pool is)."""
        if client:
            yield client
            return
        if self._pool is None and self.connection.client is None:
            # A channel closed again after its connection was (Celery does that after a lost
            # Sentinel primary): no pool can be built; say so as a connection error, which
            # kombu ignores while closing, instead of an AttributeError that stops the worker.
            raise redis.ConnectionError("the broker connection is closed")
        pool = self.pool
        if self._shared_client is None or self._shared_client_pool is not pool:
            self._shared_client = self._create_client()  # type: ignore[no-untyped-call]
            self._shared_client_pool = pool
        yield self._shared_client


class Transport(kombu_redis.Transport):
    """kombu's Redis transport with :class:`Channel`."""

    Channel = Channel


class SentinelChannel(Channel, kombu_redis.SentinelChannel):
    """kombu's Sentinel channel (the primary found through the sentinels), with the shared client.

    The shared client sits on the channel's ``SentinelConnectionPool``, which follows the primary
    through a failover, so it needs no remaking then.
    """


class SentinelTransport(kombu_redis.SentinelTransport):
    """kombu's Sentinel transport with :class:`SentinelChannel` (and :class:`LaneCycle`)."""

    Channel = SentinelChannel


class Connection(KombuConnection):
    """kombu's connection, keeping :class:`SentinelTransport` when it moves to another sentinel.

    kombu reads a ``;``-joined URL as alternates and, when the connection is lost, reconnects to
    the next one with the transport its scheme names, not ``broker_transport``. For Sentinel the
    alternates are the sentinels of one set, so every failover would swap in kombu's own
    channel: without the shared client, and with the close that stops a worker after a second
    failover (see :meth:`Channel.conn_or_acquire`). Only this package's app makes its connections
    from this class (:mod:`tasks.worker.app`): kombu's table of URL schemes stays as it is, so a
    host application's own ``sentinel://`` app keeps kombu's transport.
    """

    def switch(self, conn_str: str) -> None:
        """Move to ``conn_str`` (kombu's), keeping this package's Sentinel transport."""
        transport: object = self.transport_cls
        super().switch(conn_str)  # type: ignore[no-untyped-call]  # kombu's, untyped
        if transport == SENTINEL_TRANSPORT and self.transport_cls == "sentinel":
            self.transport_cls: object = transport
