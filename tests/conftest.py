"""Shared fixtures: the Engage sandbox, settings, fakeredis-backed runtimes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import fakeredis
import pytest
import redis

import tasks.api
import tasks.worker.publish
from tasks.cli.local_stack import redis_answers
from tasks.delivery.runtime import Runtime, install_runtime
from tasks.request import SendRequest
from tasks.sandbox import Sandbox
from tasks.settings import Settings, load_settings

SANDBOX_USER = "api@example.com"
SANDBOX_PASSWORD = "sandbox-password"
#: Redis database the test suite owns (integration tests flush it).
TEST_REDIS_URL = "redis://127.0.0.1:6379/12"


def pytest_configure(config: pytest.Config) -> None:
    """Give this process a configuration before anything reads celeryconfig.py."""
    # The in-process app only enqueues and reads state; workers get their own environment.
    os.environ.setdefault("CELERY_BROKER_URL", TEST_REDIS_URL)
    os.environ.setdefault("ENGAGE_BASE_URL", "http://127.0.0.1:9/api/rest/v19")
    os.environ.setdefault("ENGAGE_USERNAME", SANDBOX_USER)
    os.environ.setdefault("ENGAGE_PASSWORD", SANDBOX_PASSWORD)


@pytest.fixture(scope="session")
def session_sandbox() -> Iterator[Sandbox]:
    """One sandbox server for the session (starting one costs half a second)."""
    with Sandbox() as sandbox:
        yield sandbox


@pytest.fixture
def sandbox(session_sandbox: Sandbox) -> Sandbox:
    """The sandbox with its seed contacts and messages, no calls and no faults."""
    session_sandbox.state.reset()
    return session_sandbox


def make_settings(base_url: str, **env: str) -> Settings:
    """Settings for tests: fast timeouts and retries unless ``env`` says otherwise."""
    values = {
        "ENGAGE_BASE_URL": base_url,
        "ENGAGE_USERNAME": SANDBOX_USER,
        "ENGAGE_PASSWORD": SANDBOX_PASSWORD,
        "ENGAGE_CONNECT_TIMEOUT": "1",
        "ENGAGE_READ_TIMEOUT": "1",
        "ENGAGE_LEASE_MARGIN": "1",
        "ENGAGE_RETRY_BASE_DELAY": "0.1",
        "ENGAGE_RETRY_BACKOFF": "2",
        "ENGAGE_RETRY_MAX_DELAY": "1",
        "ENGAGE_RETRY_MAX_TOTAL": "60",
        "ENGAGE_UNKNOWN_RECIPIENT_DELAY": "0.1",
        "ENGAGE_VISIBILITY_TIMEOUT": "30",
        "ENGAGE_RATE_LIMIT": "0",
        **env,
    }
    return load_settings(values)


#: The local Redis database fast tests may use; each test uses and deletes keys of its own.
REAL_REDIS_DB = 14


def require_redis(url: str) -> None:
    """Skip the test when no Redis answers at ``url``; fail it in CI, where Redis must run."""
    if not redis_answers(url):
        message = f"Redis does not answer at {url}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
def real_redis() -> Iterator[redis.Redis]:
    """The local Redis (db 14): skips when it does not answer, fails in CI."""
    url = f"redis://127.0.0.1:6379/{REAL_REDIS_DB}"
    require_redis(url)
    client = redis.Redis.from_url(url, socket_connect_timeout=1)
    yield client
    client.close()


@pytest.fixture
def fake_redis() -> fakeredis.FakeRedis:
    """An in-memory Redis with Lua."""
    return fakeredis.FakeRedis()


@pytest.fixture
def runtime(sandbox: Sandbox, fake_redis: fakeredis.FakeRedis) -> Iterator[Runtime]:
    """A runtime on fakeredis talking to the sandbox, installed as this process's runtime."""
    rt = Runtime.build(make_settings(sandbox.base_url), redis_client=fake_redis)
    install_runtime(rt)
    yield rt
    install_runtime(None)


class Broker:
    """Records what would have been published: the broker is the boundary of unit tests."""

    def __init__(self) -> None:
        self.published: list[tuple[SendRequest, str, list[str]]] = []
        self.fail = False

    def __call__(self, request: SendRequest, key: str, task_ids: list[str]) -> None:
        if self.fail:
            raise ConnectionError("broker down")
        self.published.append((request, key, task_ids))


@pytest.fixture
def broker(monkeypatch: pytest.MonkeyPatch) -> Broker:
    """``tasks.worker.publish.publish``, recording instead of publishing."""
    recorder = Broker()
    monkeypatch.setattr(tasks.worker.publish, "publish", recorder)
    monkeypatch.setattr(tasks.api, "publish", recorder)
    return recorder


#: Settings for a child process that reads celeryconfig and never connects anywhere.
SUBPROCESS_ENV = {
    "CELERY_BROKER_URL": "redis://127.0.0.1:9/0",
    "ENGAGE_BASE_URL": "http://127.0.0.1:9/api/rest/v19",
    "ENGAGE_USERNAME": "api@example.com",
    "ENGAGE_PASSWORD": "sandbox-password",
}


def celery_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter (celeryconfig is read once per process)."""
    return subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **SUBPROCESS_ENV, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
