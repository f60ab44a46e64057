"""The package on a real Sentinel set: enqueue, a worker, ``doctor`` and ``engage-sms metrics``.

The test starts its own primary, replica and three sentinels (``redis-server --sentinel``) on free
loopback ports; every process is configured only by ``sentinel://`` URLs and the master name.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tasks.cli.local_stack import ManagedProcess, celery_worker, start_worker
from tasks.cli.sentinel_set import MASTER_NAME, SentinelSet
from tasks.sandbox import Sandbox
from tests.support.environments import WORKER_ENV, bare_env
from tests.support.processes import run_module, run_python

pytestmark = pytest.mark.process


@pytest.fixture(scope="module")
def sentinel_set(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelSet]:
    """A primary, one replica and three sentinels of this module's own."""
    servers = SentinelSet(
        tmp_path_factory.mktemp("sentinel"),
        replicas=1,
        server_options=("--min-replicas-to-write", "1", "--min-replicas-max-lag", "10"),
    )
    try:
        yield servers.start()
    finally:
        servers.stop()


def _env(servers: SentinelSet, sandbox: Sandbox) -> dict[str, str]:
    fast = {k: v for k, v in WORKER_ENV.items() if k != "CELERY_BROKER_URL"}
    return bare_env(
        **fast,
        ENGAGE_BROKER_URL=servers.url,
        ENGAGE_REDIS_MASTER_NAME=MASTER_NAME,
        ENGAGE_BASE_URL=sandbox.base_url,
    )


def test_send_doctor_and_metrics_on_sentinel(
    sentinel_set: SentinelSet, sandbox: Sandbox, tmp_path: Path
) -> None:
    """A send enqueued on sentinel:// is sent once by a worker; doctor and metrics see the set."""
    env = _env(sentinel_set, sandbox)
    worker = celery_worker(env, tmp_path / "worker.log", name="sentinel", concurrency=4)
    metrics = ManagedProcess(
        [sys.executable, "-m", "tasks.cli", "metrics", "--port", str(_free_port())],
        env=env,
        log_path=tmp_path / "metrics.log",
    )
    try:
        start_worker(worker)
        sent = run_module(
            *("tasks.cli", "send", "--message-id", "23541", "--mobile", "+48505606707"),
            *("--idempotency-key", "sentinel-1", "--wait", "60"),
            env=env,
        )
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert sandbox.state.sends == {(23541, 33457): 1}

        doctor = run_module("tasks.cli", "doctor", env=env)
        assert doctor.returncode == 0, doctor.stdout
        assert "OK   sentinel: 3 of 3 listed sentinel(s) answer" in doctor.stdout
        assert "OK   replicas: 1 replica(s) connected; ENGAGE_REPLICA_ACKS=1" in doctor.stdout

        metrics.start()
        metrics.wait_for_log("metrics on http://", 60.0)
        url = metrics.log_text().split("metrics on ", 1)[1].split()[0]
        body = requests.get(url, timeout=10).text
        assert "engage_sms_redis_up 1.0" in body
        assert 'engage_sms_queue_length{queue="engage.normal"} 0.0' in body
    finally:
        metrics.stop()
        worker.stop()


def test_enqueue_refused_when_no_replica_holds_the_claim(
    sentinel_set: SentinelSet, sandbox: Sandbox
) -> None:
    """With more replica acks asked than replicas exist, enqueue fails (exit 4), nothing left."""
    env = {**_env(sentinel_set, sandbox), "ENGAGE_REPLICA_ACKS": "2"}
    refused = run_module(
        *("tasks.cli", "send", "--message-id", "23541", "--mobile", "+48505606707"),
        *("--idempotency-key", "sentinel-2"),
        env=env,
    )
    assert refused.returncode == 4, refused.stdout + refused.stderr
    assert "1 of 2 replica(s) acknowledged the write" in refused.stderr
    status = run_module("tasks.cli", "status", "sentinel-2", env=env)
    assert '"state": "unknown"' in status.stdout


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_reconnect_keeps_the_package_sentinel_transport() -> None:
    """kombu reconnects by the URL's scheme; the app's own connections keep our transport."""
    code = (
        "from tasks.worker.app import app\n"
        "connection = app.connection_for_read()\n"
        "connection.switch(connection.alt[1])\n"
        "print(type(connection.transport).__module__, type(connection.transport).__name__)"
    )
    env = bare_env(
        ENGAGE_BROKER_URL="sentinel://127.0.0.1:9;sentinel://127.0.0.1:10",
        ENGAGE_REDIS_MASTER_NAME=MASTER_NAME,
    )
    result = run_python(code, env=env)
    assert result.stdout.split() == ["tasks.worker.transport", "SentinelTransport"]


def test_a_worker_keeps_sending_after_the_primary_is_killed(
    sentinel_set: SentinelSet, sandbox: Sandbox, tmp_path: Path
) -> None:
    """SIGKILL the primary: the same worker sends again once a replica took over (no restart)."""
    env = _env(sentinel_set, sandbox)
    worker = celery_worker(env, tmp_path / "worker.log", name="failover", concurrency=4)
    try:
        start_worker(worker)
        old = sentinel_set.primary()
        sentinel_set.kill_primary()
        sentinel_set.wait_for_failover(old.public_port)
        sentinel_set.restart(old)  # back as a replica: the claim and lease have one to wait for
        sent = run_module(
            *("tasks.cli", "send", "--message-id", "23541", "--mobile", "+48505606707"),
            *("--idempotency-key", "sentinel-3", "--wait", "90"),
            env=env,
        )
        assert sent.returncode == 0, sent.stdout + sent.stderr + worker.log_text()[-3000:]
        assert sandbox.state.sends == {(23541, 33457): 1}
        assert worker.process is not None
        assert worker.process.poll() is None  # the same worker: it survived the failover
    finally:
        worker.stop()
