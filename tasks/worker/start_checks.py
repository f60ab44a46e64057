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

from tasks.settings import Settings

#: Pools the worker is run and tested with.
SUPPORTED_POOLS = ("prefork", "threads", "solo")
#: Pools that need cooperative I/O, which this package's blocking Redis calls do not give.
REFUSED_POOLS = ("gevent", "eventlet")


def option_value(argv: Sequence[str], short: str, long: str) -> str | None:
    """The value of ``short``/``long`` on a command line (``-Q a``, ``-Qa``, ``--queues=a``)."""
    for n, arg in enumerate(argv):
        if arg in (short, long):
            return argv[n + 1] if n + 1 < len(argv) else None
        if arg.startswith(f"{long}="):
            return arg.partition("=")[2]
        if arg.startswith(short) and not arg.startswith("--") and len(arg) > len(short):
            return arg[len(short) :]
    return None


def worker_problem(argv: Sequence[str], settings: Settings) -> str | None:
    """Why a ``celery worker`` with these arguments must not start, or None."""
    pool = option_value(argv, "-P", "--pool")
    if pool is not None and pool.strip().lower() in REFUSED_POOLS:
        return (
            f"--pool {pool} is not supported (blocking Redis I/O would hang the worker); "
            f"use one of {', '.join(SUPPORTED_POOLS)}"
        )
    queues = option_value(argv, "-Q", "--queues")
    if queues is None:
        return None  # no -Q: the configured queues, which are this deployment's lanes
    lanes = settings.lane_queues.values()
    foreign = [q for q in (q.strip() for q in queues.split(",")) if q and q not in lanes]
    if foreign:
        return (
            f"-Q {','.join(foreign)}: a worker of deployment {settings.key_prefix!r} "
            f"(ENGAGE_KEY_PREFIX) consumes only its lanes {','.join(lanes)}"
        )
    return None
