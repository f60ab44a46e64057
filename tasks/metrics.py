"""Prometheus metrics: what happened to sends (counters), how Engage answers, what waits in Redis.

Counters and the latency histogram live in :data:`REGISTRY`, one per process: a worker serves
them when ``ENGAGE_METRICS_PORT`` is set (:mod:`tasks.worker_signals`). Queue length and
dead-letter depth are read from Redis at scrape time by :class:`RedisStateCollector`, served by
``engage-sms metrics`` (a sidecar), so N workers do not report the same gauge N times.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import redis
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

from tasks.dead_letters import REASONS, DeadLetterStore
from tasks.delivery_ledger import RedisKeys
from tasks.errors import EngageError
from tasks.settings import Settings, broker_is_redis

#: The registry of this process's counters (not prometheus_client's global one).
REGISTRY = CollectorRegistry()
#: Outcomes counted by ``engage_sms_sends_total``: the log events that end or start a send.
OUTCOMES = ("enqueued", "duplicate", "sent", "dead_lettered", "replayed")
#: Engage answers within 35 s or times out; buckets cover fast answers and the timeout.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0)
#: Celery's default queue: a Redis list of that name on the broker.
DEFAULT_QUEUE = "celery"

SENDS = Counter(
    "engage_sms_sends", "Sends by outcome (log events).", ["outcome"], registry=REGISTRY
)
DEAD_LETTERS = Counter(
    "engage_sms_dead_letters",
    "Sends moved to the dead-letter store.",
    ["reason"],
    registry=REGISTRY,
)
RETRIES = Counter(
    "engage_sms_retries",
    "Retries scheduled, by Engage operation.",
    ["operation"],
    registry=REGISTRY,
)
ENGAGE_CALL_SECONDS = Histogram(
    "engage_sms_engage_call_seconds",
    "Engage call latency by operation and HTTP status (or error class when no answer came).",
    ["operation", "status"],
    registry=REGISTRY,
    buckets=LATENCY_BUCKETS,
)
# Series exist at zero from the start, so rate() and alerts work before the first event.
for _outcome in OUTCOMES:
    SENDS.labels(outcome=_outcome)
for _reason in REASONS:
    DEAD_LETTERS.labels(reason=_reason)

_T = TypeVar("_T")


def count_event(event: str, fields: Mapping[str, Any]) -> None:
    """Count one delivery log event (called by :func:`tasks.delivery_log.log_event`)."""
    if event in OUTCOMES:
        SENDS.labels(outcome=event).inc()
    if event == "dead_lettered":
        DEAD_LETTERS.labels(reason=str(fields.get("reason") or "unknown")).inc()
    elif event == "retrying":
        RETRIES.labels(operation=str(fields.get("operation") or "unknown")).inc()


def timed_call(operation: str, call: Callable[[], _T], status_of: Callable[[_T], int]) -> _T:
    """Run one Engage call, observing its latency by status, or by error class when it failed."""
    started = time.perf_counter()
    try:
        result = call()
    except EngageError as err:
        ENGAGE_CALL_SECONDS.labels(operation, type(err).__name__).observe(
            time.perf_counter() - started
        )
        raise
    ENGAGE_CALL_SECONDS.labels(operation, str(status_of(result))).observe(
        time.perf_counter() - started
    )
    return result


class RedisStateCollector(Collector):
    """Gauges read from Redis at scrape time: broker queue length and dead-letter depth."""

    def __init__(
        self,
        *,
        dead_letters: DeadLetterStore,
        broker: redis.Redis | None,
        queue: str = DEFAULT_QUEUE,
    ) -> None:
        self._dead_letters = dead_letters
        self._broker = broker
        self._queue = queue

    def collect(self) -> Iterator[Metric]:
        """One scrape; Redis down shows as ``engage_sms_redis_up 0``, not as a failed scrape."""
        up = GaugeMetricFamily("engage_sms_redis_up", "1 when Redis answered this scrape.")
        try:
            depth = self._dead_letters.depth_by_reason()
            length = None if self._broker is None else int(self._broker.llen(self._queue))
        except redis.RedisError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        dlq = GaugeMetricFamily(
            "engage_sms_dead_letter_depth", "Entries in the dead-letter store.", labels=["reason"]
        )
        for reason in sorted({*REASONS, *depth}):
            dlq.add_metric([reason], depth.get(reason, 0))
        yield dlq
        if length is not None:
            queue = GaugeMetricFamily(
                "engage_sms_queue_length", "Messages waiting in the broker queue.", labels=["queue"]
            )
            queue.add_metric([self._queue], length)
            yield queue


def serve(
    port: int,
    *,
    host: str = "0.0.0.0",  # noqa: S104  (scraped from other hosts and containers)
    registry: CollectorRegistry = REGISTRY,
) -> tuple[WSGIServer, threading.Thread]:
    """Serve ``/metrics`` for ``registry`` on a background thread."""
    return start_http_server(port, addr=host, registry=registry)


def sidecar_registry(settings: Settings) -> CollectorRegistry:
    """A registry with only the Redis-derived gauges, for ``engage-sms metrics``."""
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=5)
    broker = (
        redis.Redis.from_url(settings.broker_url, socket_timeout=5, socket_connect_timeout=5)
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
    registry.register(RedisStateCollector(dead_letters=store, broker=broker))
    return registry
