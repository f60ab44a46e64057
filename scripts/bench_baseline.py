"""The bare-chain baseline of ``make bench``: two trivial tasks chained, on their own Celery app.

Same broker as the benchmark and the settings of ``celeryconfig.py`` that shape what a worker
does per message (transport, JSON, late acks, prefetch, task events, no results), so the
difference in CPU per message between this chain and ``engage.resolve_contact ->
engage.send_single`` is the cost of the pipeline's own work. Started as ``celery -A
bench_baseline worker`` with ``scripts/`` on ``PYTHONPATH``; it imports nothing from
:mod:`tasks` but the broker transport.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

#: The benchmark's own Redis database (flushed by ``scripts/bench.py`` at start).
BROKER_URL = "redis://127.0.0.1:6379/10"
#: A queue of its own, so a baseline message can never reach an ``engage`` worker or vice versa.
QUEUE = "bench-baseline"
#: celeryconfig.py's value with the default ENGAGE_VISIBILITY_TIMEOUT.
VISIBILITY_TIMEOUT = 7200.0

app = Celery("bench_baseline")
app.conf.update(
    broker_url=BROKER_URL,
    task_default_queue=QUEUE,
    task_ignore_result=True,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    event_serializer="json",
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=4,
    broker_connection_retry_on_startup=True,
    # celeryconfig.py's transport: kombu's, reusing one client object per channel. Named, not
    # imported: the worker imports it from the repository root (celery puts it on sys.path).
    broker_transport="tasks.worker.transport:Transport",
    broker_transport_options={
        "visibility_timeout": VISIBILITY_TIMEOUT,
        "unacked_restore_interval": 10,
        "unacked_restore_throttle": 1,
    },
    worker_send_task_events=True,
    task_send_sent_event=False,
    task_track_started=True,
    enable_utc=True,
    timezone="UTC",
)


def _first(request: dict[str, Any], key: str, task_ids: list[str]) -> dict[str, Any]:
    """Stands in for ``engage.resolve_contact``: same arguments, a constant answer."""
    return {"contact_id": 1}


def _second(
    resolved: dict[str, Any], request: dict[str, Any], key: str, task_ids: list[str]
) -> dict[str, Any]:
    """Stands in for ``engage.send_single``: same arguments, a constant answer."""
    return {"outcome": "sent", "key": key, "contact_id": resolved["contact_id"]}


# Registered by call, not decorator: Celery's decorators are untyped (mypy strict).
first = app.task(name="bench.first", bind=False, acks_late=True, reject_on_worker_lost=True)(_first)
second = app.task(name="bench.second", bind=False, acks_late=True, reject_on_worker_lost=True)(
    _second
)
