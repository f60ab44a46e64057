"""Fixtures shared by every layer; the helpers behind them live in :mod:`tests.support`."""

from __future__ import annotations

import os
from collections.abc import Iterator

import fakeredis
import pytest
import redis

from tasks.delivery.runtime import Runtime
from tasks.sandbox import Sandbox
from tasks.worker.app import app
from tests.support import sandbox as sandboxes
from tests.support.broker import Broker, memory_broker
from tests.support.environments import PYTEST_PROCESS_ENV, REAL_REDIS_URL, make_settings
from tests.support.machine_redis import machine_watch
from tests.support.real_redis import connected
from tests.support.runtime import fake_runtime, installed

# Re-exported for tests that still import it from here (tests.support.environments owns it).
__all__ = ["make_settings"]


def pytest_configure(config: pytest.Config) -> None:
    """Give this process a configuration before anything reads the package's Celery config."""
    for name, value in PYTEST_PROCESS_ENV.items():
        os.environ.setdefault(name, value)


@pytest.fixture(scope="session", autouse=True)
def machine_redis_untouched() -> Iterator[None]:
    """The whole run flushes nothing on 127.0.0.1:6379 (if anything answers there).

    The tests use only Redis servers they start; this watches it for the whole run, reading only.
    """
    with machine_watch() as check:
        yield
        check()


@pytest.fixture(scope="session")
def session_sandbox() -> Iterator[Sandbox]:
    """One sandbox server for the session."""
    yield from sandboxes.serve()


@pytest.fixture
def sandbox(session_sandbox: Sandbox) -> Sandbox:
    """The sandbox with its seed contacts and messages, no calls and no faults."""
    return sandboxes.fresh(session_sandbox)


@pytest.fixture
def fake_redis() -> fakeredis.FakeRedis:
    """An in-memory Redis with Lua."""
    return fakeredis.FakeRedis()


@pytest.fixture
def runtime(sandbox: Sandbox, fake_redis: fakeredis.FakeRedis) -> Iterator[Runtime]:
    """A runtime on fakeredis talking to the sandbox, installed as this process's runtime."""
    with installed(fake_runtime(make_settings(sandbox.base_url), redis_client=fake_redis)) as rt:
        yield rt


@pytest.fixture
def broker() -> Iterator[Broker]:
    """The package's Celery app on an empty in-memory broker: publishes are real, and read back."""
    with memory_broker(app) as memory:
        yield memory


@pytest.fixture
def real_redis() -> Iterator[redis.Redis]:
    """The local Redis (db 14): skips when it does not answer, fails in CI."""
    with connected(REAL_REDIS_URL) as client:
        yield client
