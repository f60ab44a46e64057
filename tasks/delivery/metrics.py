"""Prometheus counters: what happened to sends, and how fast Engage answers.

They live in :data:`REGISTRY`, one per process: a worker serves them when
``ENGAGE_METRICS_PORT`` is set (:mod:`tasks.worker.signals`). Queue length and dead-letter depth
are read from Redis at scrape time by the ``engage-sms metrics`` sidecar
(:mod:`tasks.cli.metrics_sidecar`), so N workers do not report the same gauge N times.
"""

from __future__ import annotations

import errno
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

from tasks.core.send_options import Priority
from tasks.core.settings import DEFAULT_METRICS_ADDRESS
from tasks.state.enums import Reason

#: The registry of this process's counters (not prometheus_client's global one).
REGISTRY = CollectorRegistry()
#: Outcomes counted by ``engage_sms_sends_total``: the log events that end or start a send.
OUTCOMES = (
    "enqueued",
    "duplicate",
    "sent",
    "dead_lettered",
    "replayed",
    # The sending policy's ends, and quiet hours' holding and release.
    "expired",
    "capped",
    "suppressed",
    "deferred",
    "released",
)
#: Engage answers within 35 s or times out; buckets cover fast answers and the timeout.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0)
#: Enqueue to sent: an urgent send within a second, a bulk one after minutes of backlog, a
#: retried one after Engage's 30 s and 15 min back-off.
QUEUED_BUCKETS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0)

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
HELD_BACK = Counter(
    "engage_sms_held_back",
    "Sends not started because fewer replicas than ENGAGE_REPLICA_ACKS held the lease.",
    registry=REGISTRY,
)
ENGAGE_CALL_SECONDS = Histogram(
    "engage_sms_engage_call_seconds",
    "Engage call latency by operation and HTTP status (or error class when no answer came).",
    ["operation", "status"],
    registry=REGISTRY,
    buckets=LATENCY_BUCKETS,
)
ENQUEUE_TO_SENT_SECONDS = Histogram(
    "engage_sms_enqueue_to_sent_seconds",
    "Time from enqueue (or replay) to Engage accepting the send, by priority lane.",
    ["lane"],
    registry=REGISTRY,
    buckets=QUEUED_BUCKETS,
)
# Series exist at zero from the start, so rate() and alerts work before the first event.
for _lane in Priority:
    ENQUEUE_TO_SENT_SECONDS.labels(lane=_lane)
for _outcome in OUTCOMES:
    SENDS.labels(outcome=_outcome)
for _reason in Reason:
    DEAD_LETTERS.labels(reason=_reason)


def count_event(event: str, fields: Mapping[str, Any]) -> None:
    """Count one delivery log event (called by :func:`tasks.delivery.events.log_event`)."""
    if event in OUTCOMES:
        SENDS.labels(outcome=event).inc()
    if event == "dead_lettered":
        DEAD_LETTERS.labels(reason=str(fields.get("reason") or "unknown")).inc()
    elif event == "retrying":
        RETRIES.labels(operation=str(fields.get("operation") or "unknown")).inc()
    elif event == "held_back":
        HELD_BACK.inc()


def observe_call(operation: str, status: str, seconds: float) -> None:
    """One Engage call's latency by HTTP status, or by error class when no answer came.

    The Engage client calls it (:data:`tasks.engage.http.CallObserver`).
    """
    ENGAGE_CALL_SECONDS.labels(operation, status).observe(seconds)


def observe_sent(lane: str, seconds: float) -> None:
    """One send accepted by Engage, ``seconds`` after it was enqueued in ``lane``."""
    ENQUEUE_TO_SENT_SECONDS.labels(lane=lane).observe(seconds)


#: Workers on one host share ENGAGE_METRICS_PORT: each takes the first free port from it on,
#: within this many (9100 - 9115), so a second and third worker serve their counters too.
WORKER_PORT_SPAN = 16


def serve_first_free(
    port: int, *, host: str = DEFAULT_METRICS_ADDRESS, span: int = WORKER_PORT_SPAN
) -> tuple[WSGIServer, threading.Thread]:
    """Serve ``/metrics`` on the first port of ``port .. port + span - 1`` that is free.

    Raises the last OSError when every port of the span is taken.
    """
    last = OSError(errno.EADDRINUSE, f"ports {port} to {port + span - 1} are all in use")
    for candidate in range(port, min(port + span, 65536)):
        try:
            return serve(candidate, host=host)
        except OSError as err:
            if err.errno != errno.EADDRINUSE:
                raise
            last = err
    raise last


def serve(
    port: int,
    *,
    host: str = DEFAULT_METRICS_ADDRESS,
    registry: CollectorRegistry = REGISTRY,
) -> tuple[WSGIServer, threading.Thread]:
    """Serve ``/metrics`` for ``registry`` on a background thread, on ``host`` (this machine).

    Another address (``ENGAGE_METRICS_ADDRESS``) is a choice: a scraper in another container.
    """
    return start_http_server(port, addr=host, registry=registry)
