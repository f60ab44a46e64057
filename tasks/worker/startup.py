"""What a worker (and beat) checks as it starts, in its main process.

- As Celery builds it (``celeryd_init``, from the options Celery parsed): it calls Engage, so
  the Engage settings must be there; it refuses the gevent and eventlet pools and queues that are
  not its deployment's lanes (:mod:`tasks.worker.start_checks`), with one line each.
- Before it takes any message (``worker_init``): the ledger's Redis must never evict our keys
  (:mod:`tasks.state.redis_safety`); on an evicting Redis the worker refuses to start, with one
  line naming the fix. When Redis does not answer yet, the worker starts anyway (every step
  waits for Redis) and says it could not check.
- Once logging is up (``worker_ready``): the Engage budget is agreed with every other worker
  (:meth:`tasks.state.rate_limit.RateLimiter.agree`); a budget other than this worker's own
  ``ENGAGE_RATE_LIMIT`` is logged as an error, naming both.
- Beat, as it starts (``beat_init``): settings that could not be loaded stop it with one line.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from celery.signals import beat_init, celeryd_init, worker_init, worker_ready

from tasks.core.errors import ConfigurationError
from tasks.core.settings import Settings
from tasks.delivery.runtime import current_runtime
from tasks.state import REDIS_UNREACHABLE
from tasks.state.redis_safety import check_no_eviction
from tasks.worker.app import engage_settings
from tasks.worker.start_checks import pool_name, worker_problem

logger = logging.getLogger("engage.worker")


def refuse_unfit_worker(
    sender: Any = None, conf: Any = None, options: Any = None, **_: Any
) -> None:
    """Exit with one line without Engage's settings, or when the pool or queues do not fit."""
    try:
        # A worker calls Engage: say so at start, not at the first send.
        settings = stop_on_configuration_error()
        settings.require_engage()
    except ConfigurationError as err:
        sys.exit(f"engage-sms: configuration error: {err}")
    options = options or {}
    # As Celery's WorkController resolves it: -P (parsed into a pool class), else worker_pool.
    pool = options.get("pool") or options.get("pool_cls") or (conf or {}).get("worker_pool")
    queues = options.get("queues")
    if isinstance(queues, str):
        queues = queues.split(",")
    problem = worker_problem(None if pool is None else pool_name(pool), queues, settings)
    if problem is not None:
        # Raised out of the signal (Celery logs and swallows Exceptions there, not SystemExit).
        sys.exit(f"engage-sms: worker refused: {problem}")


def stop_on_configuration_error(sender: Any = None, **_: Any) -> Settings:
    """The settings; exit with one line naming the variable when they could not be loaded.

    Usually :mod:`tasks.worker.programs` has stopped the program already; not when Celery read
    the configuration before its command line (``-P gevent`` patches first, and gevent's patching
    reads Celery's current app).
    """
    try:
        return engage_settings()
    except ConfigurationError as err:
        sys.exit(f"engage-sms: configuration error: {err}")


def check_ledger_redis(sender: Any = None, **_: Any) -> None:
    """Exit with one line when the ledger's Redis may evict keys."""
    settings = engage_settings()
    try:
        check_no_eviction(current_runtime(settings).redis, settings.redis_url)
    except ConfigurationError as err:
        # Raised out of the signal (Celery logs and swallows Exceptions there, not SystemExit).
        sys.exit(f"engage-sms: configuration error: {err}")
    except REDIS_UNREACHABLE as err:
        logger.warning(
            "maxmemory-policy of the ledger's Redis not checked: Redis unavailable (%s)",
            type(err).__name__,
        )


def agree_on_the_budget(sender: Any = None, **_: Any) -> None:
    """Agree on the one Engage budget kept in Redis; a mismatch is logged loudly."""
    limiter = current_runtime(engage_settings()).rate_limiter
    try:
        agreed = limiter.agree()
    except REDIS_UNREACHABLE as err:
        logger.warning(
            "Engage budget not agreed yet: Redis unavailable (%s); agreed before the first call",
            type(err).__name__,
        )
        return
    if agreed != limiter.configured:
        logger.error(
            "ENGAGE RATE BUDGET MISMATCH: this worker's ENGAGE_RATE_LIMIT/ENGAGE_RATE_BURST say "
            "%s, the budget every worker shares in Redis is %s: this worker keeps to %s. Give "
            "every worker the same value; to change the budget, stop the workers, delete the "
            "key %s and start them with the new value",
            limiter.configured,
            agreed,
            agreed,
            current_runtime(engage_settings()).keys.rate_budget,
        )
    else:
        logger.info("Engage budget: %s, shared by every worker through Redis", agreed)


# Connected by call, not decorator: Celery's decorators are untyped.
celeryd_init.connect(refuse_unfit_worker, weak=False)
beat_init.connect(stop_on_configuration_error, weak=False)
worker_init.connect(check_ledger_redis, weak=False)
worker_ready.connect(agree_on_the_budget, weak=False)
