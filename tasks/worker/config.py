"""The Celery configuration of :data:`tasks.worker.app.app`: everything comes from the environment.

The variables are listed in the README (Configuration). A missing or malformed one stops a
celery program at start with a one-line error naming it (:mod:`tasks.worker.programs`), and is
raised to any other process by :func:`tasks.worker.app.engage_settings`. A process that only
enqueues needs the broker and Redis settings; a worker needs Engage's too. Importing this module
decides nothing about the process: what a worker, beat or Flower refuses is decided in Celery's
signals (:mod:`tasks.worker.programs`, :mod:`tasks.worker.startup`).
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from kombu.entity import Exchange, Queue

from tasks.core.errors import ConfigurationError
from tasks.core.schedule_file import Schedule, load_schedules
from tasks.core.send_options import DEFAULT_DEPLOYMENT, DEFAULT_PRIORITY
from tasks.core.settings import Settings, broker_is_redis, load_settings
from tasks.state.clients import broker_transport_options as sentinel_options
from tasks.worker.beat_schedule import housekeeping_entries, schedule_entries
from tasks.worker.transport import LANE_CYCLE, SENTINEL_TRANSPORT, TRANSPORT


def _load() -> tuple[Settings, tuple[Schedule, ...], ConfigurationError | None]:
    try:
        settings = load_settings(os.environ)
        # Validated in full here, so a bad file stops beat and workers at start, not at 9 a.m.
        return settings, load_schedules(settings.schedule_file), None
    except ConfigurationError as err:
        # Kept, not raised: raised out of Celery's option parsing it would be a traceback. A celery
        # program stops with it in one line (tasks.worker.programs); any other process gets it
        # from tasks.worker.app.engage_settings. The broker below is then an in-memory one, never
        # a server of another deployment.
        return Settings(broker_url="memory://", redis_url="memory://"), (), err


engage_settings, engage_schedules, engage_settings_error = _load()
beat_schedule = {**housekeeping_entries(), **schedule_entries(engage_schedules)}


def _deployment_transport_keys(prefix: str) -> dict[str, str]:
    """kombu's unacked-message keys of a deployment (the default one keeps kombu's names).

    Each deployment restores its own unacknowledged messages, after its own visibility timeout.
    """
    if prefix == DEFAULT_DEPLOYMENT:
        return {}
    return {
        "unacked_key": f"{prefix}.unacked",
        "unacked_index_key": f"{prefix}.unacked_index",
        "unacked_mutex_key": f"{prefix}.unacked_mutex",
    }


broker_url = engage_settings.broker_url
# Celery reads the CELERY_BROKER_URL variable before any app's broker_url; the read and write
# URLs take precedence over it, so a host's CELERY_BROKER_URL never redirects this app.
broker_read_url = broker_write_url = broker_url
result_backend = engage_settings.result_backend
task_ignore_result = engage_settings.result_backend is None
result_expires = 86400

# JSON only: task messages must be readable by any consumer and never unpickled.
task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]
event_serializer = "json"

# One queue per priority lane, each on a direct exchange of its own name, named by the
# deployment (ENGAGE_KEY_PREFIX). A worker started without -Q consumes all of them;
# housekeeping and schedule runs go to the normal lane. Queue objects, not a dict of options:
# Flower lists a broker's queues from them when no worker answers (queue lengths matter most
# when the workers are down).
task_queues = [
    Queue(name, Exchange(name, type="direct"), routing_key=name)  # type: ignore[no-untyped-call]
    for name in engage_settings.lane_queues.values()
]
task_default_queue = engage_settings.lane_queues[DEFAULT_PRIORITY]
task_default_exchange = task_default_queue
task_default_routing_key = task_default_queue

# Delivery guarantees: acknowledge after the task ran; requeue if its worker process dies.
task_acks_late = True
task_reject_on_worker_lost = True
# One message per thread: a prefetched message waits behind whatever the threads are doing, so
# an urgent send fetched behind three bulk ones per thread would wait for all of them
# (docs/benchmarks.md, lanes phase).
worker_prefetch_multiplier = 1
broker_connection_retry_on_startup = True
if broker_is_redis(broker_url):
    if urlsplit(broker_url).scheme == "redis":
        # kombu's transport, minus a new client object per publish (see the module). Not for
        # rediss://: kombu turns TLS on by itself only when the transport is named "rediss".
        # Flower keeps kombu's own (tasks.worker.programs).
        broker_transport = TRANSPORT
    elif urlsplit(broker_url).scheme == "sentinel":
        # Kept through a failover by this app's connections (tasks.worker.transport.Connection).
        broker_transport = SENTINEL_TRANSPORT
    broker_transport_options = {
        "visibility_timeout": engage_settings.visibility_timeout,
        # Messages of a killed worker come back one visibility timeout later, found by a sweep
        # every few seconds (kombu's default sweeps only every 100 s).
        "unacked_restore_interval": max(1, min(10, int(engage_settings.visibility_timeout / 5))),
        "unacked_restore_throttle": 1,
        # Fetch from the lanes highest first, with a share for the lower ones (see the module).
        "queue_order_strategy": LANE_CYCLE,
        **_deployment_transport_keys(engage_settings.key_prefix),
        # sentinel://: the primary's name and the sentinels' password.
        **sentinel_options(engage_settings),
    }
    result_backend_transport_options = {
        "visibility_timeout": engage_settings.visibility_timeout,
        **sentinel_options(engage_settings),
    }

# Another deployment on the same broker has its own worker events and remote control: its
# Flower and `celery inspect` see only its workers (the default prefix keeps Celery's names).
if engage_settings.key_prefix != DEFAULT_DEPLOYMENT:
    event_exchange = f"{engage_settings.key_prefix}.celeryev"
    control_exchange = f"{engage_settings.key_prefix}.celery"

# Visible in Flower: workers send task events (received, started, succeeded, retried, failed).
# A task still waiting in the queue is listed only with ENGAGE_SENT_EVENTS=on: the "sent" event
# costs every enqueue a Redis round trip (docs/benchmarks.md); queue depth is in Flower anyway.
worker_send_task_events = True
task_send_sent_event = engage_settings.sent_events
task_track_started = True

# Timestamps in UTC everywhere.
enable_utc = True
timezone = "UTC"
