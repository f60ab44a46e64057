"""Worker start hooks: the Prometheus endpoint when ``ENGAGE_METRICS_PORT`` is set.

It listens on ``ENGAGE_METRICS_ADDRESS``: 127.0.0.1 unless another address is configured, on
the first free port from ``ENGAGE_METRICS_PORT`` on (several workers on one host each get one).
"""

from __future__ import annotations

import logging
from typing import Any

from celery.signals import worker_ready

from tasks.delivery import metrics
from tasks.worker.app import engage_settings

logger = logging.getLogger("engage.worker")


def start_metrics_endpoint(sender: Any = None, **_: Any) -> None:
    """Serve this worker's counters on ``ENGAGE_METRICS_PORT`` (if set) once the worker is up.

    ``worker_ready`` rather than ``worker_init``: logging is set up by then, so what happened
    is in the worker's log; it fires once per worker, in the main process.
    """
    settings = engage_settings()
    port, host = settings.metrics_port, settings.metrics_address
    if port is None:
        return
    if "prefork" in _pool_name(getattr(sender, "controller", None)):
        # Counters move in the forked children; this server sees only the parent's registry.
        logger.warning(
            "ENGAGE_METRICS_PORT with the prefork pool shows no send counters: use --pool threads"
        )
    try:
        server, _thread = metrics.serve_first_free(port, host=host)
    except OSError as err:
        # Celery logs and swallows errors raised by signal handlers: say plainly what failed.
        logger.error(
            "metrics endpoint not started on %s:%d (ENGAGE_METRICS_ADDRESS/_PORT): %s",
            host,
            port,
            err,
        )
        return
    logger.info("metrics endpoint on http://%s:%d/metrics", host, server.server_port)


# Connected by call, not decorator: Celery's decorators are untyped.
worker_ready.connect(start_metrics_endpoint, weak=False)


def _pool_name(worker: Any) -> str:
    pool = getattr(worker, "pool_cls", None)
    if pool is None:
        return ""
    return pool if isinstance(pool, str) else f"{pool.__module__}.{pool.__qualname__}"
