"""The baselines of ``make bench``, two chains of two tasks on their own Celery app.

- **The bare chain** (``bench.first -> bench.second``): two tasks that return a constant. The
  difference in CPU per message between it and ``engage.resolve_contact -> engage.send_single``
  is the cost of everything the pipeline does beyond Celery itself.
- **The requests chain** (``bench.lookup -> bench.send``): what a user would write without this
  package, the same two Engage calls with ``requests`` (one pooled session per process) and
  blanket ``autoretry_for=(Exception,)``; no ledger, no dead letters, no rate limit. The
  difference is the cost of the guarantees.

Same broker as the benchmark and the settings of ``tasks/worker/config.py`` that shape what a
worker does per message (transport, JSON, late acks, prefetch, task events, no results). Started
as ``celery -A benchmarks.baseline worker`` with the repository on ``PYTHONPATH``; it imports
nothing from :mod:`tasks` but the broker transport. Engage's address and login come from
``BENCH_ENGAGE_URL``, ``BENCH_ENGAGE_USERNAME`` and ``BENCH_ENGAGE_PASSWORD`` (the sandbox).
"""

from __future__ import annotations

import os
import threading
from typing import Any

import requests
from celery import Celery
from requests.adapters import HTTPAdapter

#: Names the benchmark's Redis for this process and the workers it starts: a throwaway server of
#: ``make bench``'s own (``benchmarks/harness.py``) unless the user gave one (flushed at start
#: and at the end).
BROKER_VARIABLE = "BENCH_REDIS_URL"
BROKER_URL = os.environ.get(BROKER_VARIABLE, "")
#: A queue of its own, so a baseline message can never reach an ``engage`` worker or vice versa.
QUEUE = "bench-baseline"
#: tasks/worker/config.py's value with the default ENGAGE_VISIBILITY_TIMEOUT.
VISIBILITY_TIMEOUT = 7200.0

app = Celery("bench_baseline")


def use_broker(url: str) -> None:
    """Point this process's baseline app, and the workers it starts, at ``url``."""
    global BROKER_URL  # noqa: PLW0603  (one run, one broker: set once before any use)
    BROKER_URL = os.environ[BROKER_VARIABLE] = url
    app.conf.broker_url = url


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
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
    # tasks/worker/config.py's transport: kombu's, reusing one client object per channel. Named,
    # not imported: the worker imports it when it builds the connection.
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


# -- the requests chain ------------------------------------------------------------------------

_local = threading.Lock()
_sessions: dict[int, requests.Session] = {}


def _session() -> requests.Session:
    """One pooled session per process, as a careful user would keep it."""
    pid = os.getpid()
    with _local:
        if pid not in _sessions:
            session = requests.Session()
            session.auth = (
                os.environ.get("BENCH_ENGAGE_USERNAME", ""),
                os.environ.get("BENCH_ENGAGE_PASSWORD", ""),
            )
            adapter = HTTPAdapter(pool_maxsize=32)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            _sessions[pid] = session
        return _sessions[pid]


def _engage(path: str) -> str:
    return f"{os.environ.get('BENCH_ENGAGE_URL', '')}/{path}"


def _lookup(request: dict[str, Any], key: str, task_ids: list[str]) -> dict[str, Any]:
    """POST contact/get; any exception is retried by Celery."""
    ident = request["identifier"]
    response = _session().post(
        _engage("contact/get"), json={"type": ident["type"], "value": ident["value"]}, timeout=35
    )
    response.raise_for_status()
    return {"contact_id": response.json()["contactId"]}


def _send(
    resolved: dict[str, Any], request: dict[str, Any], key: str, task_ids: list[str]
) -> dict[str, Any]:
    """POST message/sendSingle; any exception is retried by Celery (so a send may double)."""
    response = _session().post(
        _engage("message/sendSingle"),
        params={"messageId": request["message_id"], "recipientId": resolved["contact_id"]},
        json={"parameters": [{"name": n, "value": v} for n, v in request["parameters"]]},
        timeout=35,
    )
    response.raise_for_status()
    return {"outcome": "sent", "key": key, "contact_id": resolved["contact_id"]}


_RETRY_EVERYTHING: dict[str, Any] = {
    "autoretry_for": (Exception,),
    "retry_backoff": True,
    "max_retries": 3,
    "acks_late": True,
    "reject_on_worker_lost": True,
}
lookup = app.task(name="bench.lookup", **_RETRY_EVERYTHING)(_lookup)
send = app.task(name="bench.send", **_RETRY_EVERYTHING)(_send)
