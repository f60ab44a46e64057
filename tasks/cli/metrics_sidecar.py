"""The ``engage-sms metrics`` sidecar: gauges read from Redis at scrape time.

Broker queue length (one series per priority lane's queue), completion callbacks waiting to be
published, and dead-letter depth, served by one process beside the workers, so N workers do not
report the same gauge N times.
"""

from __future__ import annotations

from collections.abc import Iterator

import redis
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tasks.core.send_options import LANE_QUEUES
from tasks.core.settings import Settings, broker_is_redis
from tasks.state.callback_outbox import CallbackOutbox
from tasks.state.clients import redis_client
from tasks.state.dead_letters import DeadLetterStore
from tasks.state.deferrals import DeferredSends
from tasks.state.enums import Reason
from tasks.state.keys import RedisKeys

#: The broker queues gauged by default: each lane's of the default deployment (the sidecar
#: gauges its own deployment's), a Redis list of that name on the broker.
QUEUES = tuple(LANE_QUEUES.values())


class RedisStateCollector(Collector):
    """Gauges read from Redis at scrape time: queue lengths, callbacks, dead-letter depth."""

    def __init__(
        self,
        *,
        dead_letters: DeadLetterStore,
        broker: redis.Redis | None,
        queues: tuple[str, ...] = QUEUES,
        callbacks: CallbackOutbox | None = None,
        deferrals: DeferredSends | None = None,
    ) -> None:
        self._dead_letters = dead_letters
        self._broker = broker
        self._queues = queues
        self._callbacks = callbacks
        self._deferrals = deferrals

    def collect(self) -> Iterator[Metric]:
        """One scrape; Redis down shows as ``engage_sms_redis_up 0``, not as a failed scrape."""
        up = GaugeMetricFamily("engage_sms_redis_up", "1 when Redis answered this scrape.")
        try:
            depth = self._dead_letters.depth_by_reason()
            over_bound = self._dead_letters.over_bound_count()
            lengths = None if self._broker is None else self._lengths(self._broker)
            pending = None if self._callbacks is None else self._callbacks.depth()
            deferred = None if self._deferrals is None else self._deferrals.depth()
        except redis.RedisError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        dlq = GaugeMetricFamily(
            "engage_sms_dead_letter_depth", "Entries in the dead-letter store.", labels=["reason"]
        )
        for reason in sorted({*Reason, *depth}):
            dlq.add_metric([reason], depth.get(reason, 0))
        yield dlq
        yield GaugeMetricFamily(
            "engage_sms_dead_letters_over_bound",
            "Dead letters that left the listing at ENGAGE_DLQ_MAX_ENTRIES (still replayable).",
            value=over_bound,
        )
        if lengths is not None:
            queue = GaugeMetricFamily(
                "engage_sms_queue_length",
                "Messages waiting in a broker queue (one per priority lane).",
                labels=["queue"],
            )
            for name, length in zip(self._queues, lengths, strict=True):
                queue.add_metric([name], length)
            yield queue
        if pending is not None:
            yield GaugeMetricFamily(
                "engage_sms_callbacks_pending",
                "Completion callbacks due and not yet published.",
                value=pending,
            )
        if deferred is not None:
            yield GaugeMetricFamily(
                "engage_sms_deferred_sends",
                "Sends held for quiet hours (released by the workers' sweep).",
                value=deferred,
            )

    def _lengths(self, broker: redis.Redis) -> list[int]:
        pipe = broker.pipeline(transaction=False)
        for name in self._queues:
            pipe.llen(name)
        return [int(n) for n in pipe.execute()]


def sidecar_registry(settings: Settings) -> CollectorRegistry:
    """A registry with only the Redis-derived gauges, for ``engage-sms metrics``."""
    client = redis_client(settings, socket_timeout=5, socket_connect_timeout=5)
    broker = (
        redis_client(settings, settings.broker_url, socket_timeout=5, socket_connect_timeout=5)
        if broker_is_redis(settings.broker_url)
        else None
    )
    store = DeadLetterStore(
        client,
        keys=RedisKeys(settings.key_prefix),
        max_entries=settings.dlq_max_entries,
        max_age=settings.dlq_max_age,
        retention=settings.key_retention,
    )
    registry = CollectorRegistry()
    registry.register(
        RedisStateCollector(
            dead_letters=store,
            broker=broker,
            queues=tuple(settings.lane_queues.values()),
            callbacks=CallbackOutbox(client, keys=RedisKeys(settings.key_prefix)),
            deferrals=DeferredSends(
                client, keys=RedisKeys(settings.key_prefix), retention=settings.key_retention
            ),
        )
    )
    return registry
