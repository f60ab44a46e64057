"""Real Redis, real Celery workers, the sandbox over HTTP. Missing Redis fails in CI."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from tasks.cli.local_stack import ManagedProcess, celery_worker, start_worker
from tasks.delivery.runtime import install_runtime
from tests.support.environments import TEST_REDIS_URL, WORKER_ENV, child_env
from tests.support.real_redis import connected
from tests.support.waiting import wait_for

#: What the integration tests import from here (wait_for lives in tests/support, shared).
__all__ = ["FAST_ENV", "WorkerFactory", "wait_for"]

#: The workers' fast settings under the name older integration tests import.
FAST_ENV = WORKER_ENV


@pytest.fixture
def redis_db() -> Iterator[redis.Redis]:
    """The test database, empty; fails (not skips) in CI when Redis does not answer."""
    with connected(TEST_REDIS_URL) as client:
        client.flushdb()
        install_runtime(None)  # enqueue through the real Redis, not a unit test's fake
        yield client
        client.flushdb()


WorkerFactory = Callable[..., ManagedProcess]


@pytest.fixture
def start_workers(redis_db: redis.Redis, tmp_path: Path) -> Iterator[WorkerFactory]:
    """Start real workers: ``start_workers(base_url, pool=..., **env)``; all stopped at the end."""
    started: list[ManagedProcess] = []

    def start(
        base_url: str,
        *,
        name: str = "w",
        pool: str = "threads",
        queues: str | None = None,
        **env: str,
    ) -> ManagedProcess:
        full_env = child_env(WORKER_ENV, ENGAGE_BASE_URL=base_url, **env)
        worker = celery_worker(
            full_env,
            tmp_path / f"{name}-{len(started)}.log",
            name=f"{name}{len(started)}",
            pool=pool,
            concurrency=1 if pool == "solo" else 4,
            queues=queues,
        )
        started.append(worker)
        return start_worker(worker)

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def host_worker(redis_db: redis.Redis, tmp_path: Path) -> Iterator[ManagedProcess]:
    """A worker of the host application's own Celery app, consuming the callback queue."""
    # Imported here: the module reads the broker's URL, which pytest_configure sets first.
    from tests.support import callback_app  # noqa: PLC0415

    argv = [sys.executable, "-m", "celery", "-A", "tests.support.callback_app", "worker"]
    argv += ["--pool", "solo", "-Q", callback_app.QUEUE, "-n", "host@%h", "--loglevel", "INFO"]
    worker = ManagedProcess(argv, env=child_env(WORKER_ENV), log_path=tmp_path / "host.log")
    start_worker(worker)
    yield worker
    worker.stop()
