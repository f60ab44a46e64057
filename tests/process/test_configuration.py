"""The Celery configuration as a fresh process reads it (it is read once per process)."""

from __future__ import annotations

import pytest

from tasks.worker.transport import TRANSPORT
from tests.support.environments import NOWHERE_REDIS_URL, OFFLINE_ENV, child_env
from tests.support.processes import run_python

pytestmark = pytest.mark.process


def test_celeryconfig_uses_the_package_transport_for_plain_redis_brokers_only() -> None:
    """redis:// gets this transport; rediss:// (TLS) and other brokers keep kombu's choice."""
    code = "import celeryconfig; print(getattr(celeryconfig, 'broker_transport', None))"
    chosen = {
        url: run_python(
            code, env=child_env(OFFLINE_ENV, CELERY_BROKER_URL=url, REDIS_URL=NOWHERE_REDIS_URL)
        ).stdout.strip()
        for url in (
            "redis://127.0.0.1:6379/0",
            "rediss://127.0.0.1:6380/0",
            "amqp://guest@127.0.0.1//",
        )
    }
    assert chosen == {
        "redis://127.0.0.1:6379/0": TRANSPORT,
        "rediss://127.0.0.1:6380/0": "None",
        "amqp://guest@127.0.0.1//": "None",
    }
