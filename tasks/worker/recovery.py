"""Recovery without beat: every worker sweeps for stuck sends, at start and then periodically.

Beat is a singleton that deployments forget or lose; the workers are always there. Each worker's
main process runs the housekeeping sweep (:func:`tasks.worker.housekeeping.sweep`) on a daemon
thread: once as soon as it is ready, then every ``ENGAGE_SWEEP_INTERVAL`` seconds (30 s). The
sweep's Redis lock lets one process at a time do the work; with nothing stuck it is one lock and
one ``ZRANGEBYSCORE``. Beat's minutely ``engage.sweep_stuck`` stays harmless: same lock. A
second thread watches the Redis primaries once a second and recovers at once after a failover
(:mod:`tasks.worker.failover`).
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from celery.signals import worker_ready, worker_shutdown

from tasks.delivery.runtime import current_runtime
from tasks.state import REDIS_UNREACHABLE
from tasks.worker.app import engage_settings
from tasks.worker.failover import watch_forever
from tasks.worker.housekeeping import CONSUMER_SILENCE_INTERVALS, sweep

logger = logging.getLogger("engage.recovery")

_stop = threading.Event()


def sweep_forever(
    interval: float,
    stop: threading.Event = _stop,
    *,
    worker: str | None = None,
    lanes: tuple[str, ...] = (),
) -> None:
    """Sweep now, then every ``interval`` seconds until ``stop`` is set; never raises.

    Each round also reports that ``worker`` consumes ``lanes`` (the sweep warns about a lane
    with waiting sends that no worker reported).
    """
    while not stop.is_set():
        try:
            rt = current_runtime(engage_settings())
            if worker is not None:
                rt.lane_consumers.seen(
                    worker, lanes, forget_after=CONSUMER_SILENCE_INTERVALS * interval
                )
            result = sweep(rt)
        except REDIS_UNREACHABLE as err:
            logger.warning(
                "recovery sweep: Redis unreachable (%s); next try in %.0f s", err, interval
            )
        except Exception:  # a bug: log it with its traceback and try again, never die
            logger.exception("recovery sweep failed; next try in %.0f s", interval)
        else:
            if result.released:
                logger.info("recovery sweep: %d deferred sends released", len(result.released))
            if result.dead_lettered or result.republished:
                logger.warning(
                    "recovery sweep: %d dead-lettered, %d published again",
                    len(result.dead_lettered),
                    len(result.republished),
                )
        stop.wait(interval)


def start_recovery(sender: Any = None, **_: Any) -> None:
    """Start this worker's sweeper thread (``worker_ready`` fires once, in the main process)."""
    settings = engage_settings()
    interval = settings.sweep_interval
    consumed = _consumed_queues(sender)
    lanes = tuple(p.value for p, q in settings.lane_queues.items() if q in consumed)
    worker = getattr(sender, "hostname", None) or f"worker-{os.getpid()}"
    _stop.clear()
    threading.Thread(
        target=sweep_forever,
        args=(interval,),
        kwargs={"worker": worker, "lanes": lanes},
        name="engage-recovery",
        daemon=True,
    ).start()
    # A new Redis primary may have lost messages: recovered at once, not at the next sweep.
    threading.Thread(
        target=watch_forever,
        args=(lambda: current_runtime(engage_settings()), _stop),
        name="engage-failover-watch",
        daemon=True,
    ).start()
    logger.info("recovery sweep every %.0f s started; lanes consumed: %s", interval, lanes)


def _consumed_queues(consumer: Any) -> set[str]:
    """The queue names a worker consumes (its ``-Q``, else every configured queue)."""
    try:
        return set(consumer.app.amqp.queues.consume_from)
    except AttributeError:
        return set()


def stop_recovery(sender: Any = None, **_: Any) -> None:
    """Let the sweeper thread end with the worker."""
    _stop.set()


# Connected by call, not decorator: Celery's decorators are untyped.
worker_ready.connect(start_recovery, weak=False)
worker_shutdown.connect(stop_recovery, weak=False)
