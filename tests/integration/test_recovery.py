"""Recovery without beat: after a killed worker or a Redis restart, every send still ends."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tasks.api import delivery_status, send_prepared_sms
from tasks.cli.redis_server import RedisServer
from tasks.sandbox import Sandbox
from tests.integration.conftest import FAST_ENV, WorkerFactory, wait_for

pytestmark = pytest.mark.integration

FINAL = ("sent", "dead_lettered")
#: The recovery bound: final within 4 minutes of the worker's restart or Redis' return.
RECOVERY_LIMIT = 240.0


def test_send_of_a_killed_worker_ends_without_beat_or_redelivery(
    start_workers: WorkerFactory, sandbox: Sandbox, redis_db: redis.Redis
) -> None:
    """SIGKILL mid-send, production visibility timeout, no beat: the workers' sweep ends it."""
    env = {
        "ENGAGE_READ_TIMEOUT": "5",
        "ENGAGE_VISIBILITY_TIMEOUT": "7200",  # the broker would hand the message out in 2 h
        "ENGAGE_SWEEP_INTERVAL": "2",
    }
    worker = start_workers(sandbox.base_url, **env)
    sandbox.state.set_faults({"script": {"message/sendSingle": ["delay:1.5"]}})
    send_prepared_sms(23541, mobile="+48505606707", idempotency_key="nobeat-1")
    wait_for(lambda: sandbox.state.calls_to("message/sendSingle"), what="the send to start")
    worker.kill()
    start_workers(sandbox.base_url, name="restarted", **env)
    restarted = time.monotonic()
    status = wait_for(
        lambda: (s := delivery_status("nobeat-1"))["state"] in FINAL and s,
        timeout=RECOVERY_LIMIT,
        what="a final state",
    )
    assert time.monotonic() - restarted < RECOVERY_LIMIT
    assert (status["state"], status["reason"]) == ("dead_lettered", "outcome_unknown")
    assert len(sandbox.state.calls_to("message/sendSingle")) == 1


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis server this test may stop and start, its data kept across the restart."""
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


def test_a_redis_restart_mid_run_loses_and_doubles_nothing(
    start_workers: WorkerFactory, sandbox: Sandbox, own_redis: RedisServer
) -> None:
    """Redis away for 10 s mid-run, no beat: every send final within 4 minutes, each sent once."""
    count = 30
    mobiles = [f"4860100{n:04d}" for n in range(count)]
    sandbox.state.add_contacts(
        {"type": "MOBILE", "value": m, "contactId": 700_000 + n} for n, m in enumerate(mobiles)
    )
    sandbox.state.set_faults({"latency": 0.1})
    env = {
        "CELERY_BROKER_URL": own_redis.url,
        "ENGAGE_RATE_LIMIT": "4",
        "ENGAGE_SWEEP_INTERVAL": "5",
    }
    start_workers(sandbox.base_url, **env)
    enqueue = (
        "import sys\nfrom tasks import send_prepared_sms\n"
        "for n, m in enumerate(sys.argv[1:]):\n"
        "    send_prepared_sms(23541, mobile='+' + m, idempotency_key=f'outage-{n}')\n"
    )
    subprocess.run(
        [sys.executable, "-c", enqueue, *mobiles],
        env={**os.environ, **FAST_ENV, **env},
        check=True,
        timeout=60,
    )
    wait_for(lambda: len(sandbox.state.sends) >= 5, timeout=60, what="sends under way")
    own_redis.outage(10)
    back = time.monotonic()
    ledger = redis.Redis.from_url(own_redis.url, decode_responses=True)

    def states() -> list[str]:
        return [str(ledger.hget(f"engage:send:outage-{n}", "state")) for n in range(count)]

    wait_for(
        lambda: all(s in FINAL for s in states()), timeout=RECOVERY_LIMIT, what="every send final"
    )
    assert time.monotonic() - back < RECOVERY_LIMIT
    assert all(n == 1 for n in sandbox.state.sends.values()), json.dumps(
        sandbox.state.sends_as_json()
    )
    sent = [s for s in states() if s == "sent"]
    # Each send reached Engage at most once; each one recorded sent was really sent.
    assert len(sent) <= len(sandbox.state.sends)
