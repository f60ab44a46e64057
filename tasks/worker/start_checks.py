"""What a worker refuses at start, before it takes a message: foreign queues and unsupported pools.

- **Queues**: a worker consumes only its own deployment's lanes (``{prefix}.urgent`` ...). A
  queue of another deployment would send its tasks through this deployment's Engage tenant and
  ledger; the callback queue (or Celery's default ``celery``, where older versions published
  callbacks) holds the host application's tasks, which this worker does not know and would drop.
- **Pools**: prefork, threads and solo. gevent and eventlet need every blocking call to yield,
  and the transport, the recovery thread and the rate limiter's sleeps block: such a worker hung
  before ``ready`` with no error. Refused with one line instead.
"""

from __future__ import annotations

from collections.abc import Sequence

from tasks.core.settings import Settings

#: Pools the worker is run and tested with.
SUPPORTED_POOLS = ("prefork", "threads", "solo")
#: Pools that need cooperative I/O, which this package's blocking Redis calls do not give.
REFUSED_POOLS = ("gevent", "eventlet")


def pool_name(pool: object) -> str:
    """A pool as ``-P`` names it: ``gevent`` for Celery's ``celery.concurrency.gevent:TaskPool``."""
    if isinstance(pool, str):
        return pool.rpartition(":")[0].rpartition(".")[2] or pool
    return str(getattr(pool, "__module__", pool)).rpartition(".")[2]


def worker_problem(
    pool: str | None, queues: Sequence[str] | None, settings: Settings
) -> str | None:
    """Why a worker with this pool and these ``-Q`` queues must not start, or None."""
    if pool is not None and pool.strip().lower() in REFUSED_POOLS:
        return (
            f"--pool {pool} is not supported (blocking Redis I/O would hang the worker); "
            f"use one of {', '.join(SUPPORTED_POOLS)}"
        )
    if not queues:
        return None  # no -Q: the configured queues, which are this deployment's lanes
    lanes = settings.lane_queues.values()
    foreign = [q for q in (q.strip() for q in queues) if q and q not in lanes]
    if foreign:
        return (
            f"-Q {','.join(foreign)}: a worker of deployment {settings.key_prefix!r} "
            f"(ENGAGE_KEY_PREFIX) consumes only its lanes {','.join(lanes)}"
        )
    return None
