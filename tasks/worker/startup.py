"""What a worker checks as it starts, in its main process.

- Before it takes any message (``worker_init``): the ledger's Redis must never evict our keys
  (:mod:`tasks.state.redis_safety`); on an evicting Redis the worker refuses to start, with one
  line naming the fix. When Redis does not answer yet, the worker starts anyway (every step
  waits for Redis) and says it could not check.
- Once logging is up (``worker_ready``): the Engage budget is agreed with every other worker
  (:meth:`tasks.state.rate_limit.RateLimiter.agree`); a budget other than this worker's own
  ``ENGAGE_RATE_LIMIT`` is logged as an error, naming both.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from celery.signals import worker_init, worker_ready

from tasks.delivery.runtime import current_runtime
from tasks.errors import ConfigurationError
from tasks.state import REDIS_UNREACHABLE
from tasks.state.redis_safety import check_no_eviction
from tasks.worker.app import engage_settings

logger = logging.getLogger("engage.worker")


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
worker_init.connect(check_ledger_redis, weak=False)
worker_ready.connect(agree_on_the_budget, weak=False)
