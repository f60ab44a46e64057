"""A ledger on a Redis that may evict keys is refused: no worker starts, nothing is enqueued.

An evicted ``sent`` record makes the next enqueue of its key (or a repeated beat tick) send
again; ``volatile-*`` policies evict our records too, since every one carries a TTL.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tasks.api import send_prepared_sms
from tasks.cli.local_stack import celery_command
from tasks.cli.redis_server import RedisServer
from tasks.core.errors import ConfigurationError
from tasks.delivery.runtime import Runtime
from tests.support.environments import WORKER_ENV, child_env, make_settings
from tests.support.runtime import installed

pytestmark = pytest.mark.process

FIX = "set maxmemory-policy noeviction"


@pytest.fixture(params=["allkeys-lru", "volatile-lru"])
def evicting_redis(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of this test's own with an evicting maxmemory-policy."""
    server = RedisServer(tmp_path / "redis").start()
    client = redis.Redis.from_url(server.url)
    client.config_set("maxmemory", "100mb")
    client.config_set("maxmemory-policy", request.param)
    yield server
    server.stop()


def test_a_worker_refuses_to_start(evicting_redis: RedisServer) -> None:
    """The worker exits before taking a message, with one line naming the fix."""
    env = child_env(
        WORKER_ENV,
        CELERY_BROKER_URL=evicting_redis.url,
        ENGAGE_BASE_URL="http://127.0.0.1:9/api/rest/v19",
    )
    argv = celery_command("worker", "--pool", "threads", "--concurrency", "1")
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0
    [line] = [line for line in done.stderr.splitlines() if FIX in line]
    assert line.startswith("engage-sms: configuration error: REDIS_URL: ")
    assert " ready." not in done.stdout + done.stderr


def test_the_api_refuses_to_enqueue(evicting_redis: RedisServer) -> None:
    """send_prepared_sms raises ConfigurationError naming REDIS_URL; nothing is written."""
    runtime = Runtime.build(make_settings(REDIS_URL=evicting_redis.url))
    with installed(runtime), pytest.raises(ConfigurationError, match=FIX) as refused:
        send_prepared_sms(23541, mobile="+48505606707", idempotency_key="evict-1")
    assert refused.value.setting == "REDIS_URL"
    assert redis.Redis.from_url(evicting_redis.url).dbsize() == 0
