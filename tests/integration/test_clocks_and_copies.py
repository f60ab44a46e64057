"""Clocks and copies: a worker's wrong clock or a republished copy never ends a live send.

Real workers, real Redis, the sandbox. A worker's clock is skewed by the test hook in
``tests/support/skewed_clock`` (its ``time.time()`` runs off, kombu's and Celery's included).
"""

from __future__ import annotations

import time

import pytest
import redis

from tasks.api import delivery_status, send_prepared_sms
from tasks.cli.local_stack import ManagedProcess
from tasks.sandbox import Sandbox
from tests.integration.conftest import WorkerFactory, wait_for
from tests.support.skewed_clock import skewed

pytestmark = pytest.mark.integration

#: A send that takes 12 s at Engage, inside a lease of 1 + 20 + 1 s.
SLOW_SEND = {"ENGAGE_READ_TIMEOUT": "20", "ENGAGE_VISIBILITY_TIMEOUT": "60"}


def dead_letter_events(*workers: ManagedProcess) -> list[str]:
    """The dead_lettered log lines of these workers."""
    return [
        line
        for worker in workers
        for line in worker.log_text().splitlines()
        if '"event": "dead_lettered"' in line
    ]


@pytest.mark.parametrize(
    ("sender_skew", "sweeper_skew"),
    [(0.0, 120.0), (-120.0, 0.0)],
    ids=["sweeper-ahead", "sender-behind"],
)
def test_a_skewed_clock_never_ends_a_live_send(
    start_workers: WorkerFactory,
    sandbox: Sandbox,
    redis_db: redis.Redis,
    sender_skew: float,
    sweeper_skew: float,
) -> None:
    """A send 12 s into its 22 s lease stays sending while a worker 120 s off sweeps; sent once."""
    sandbox.state.set_faults({"script": {"message/sendSingle": ["delay:12"]}})
    sender = start_workers(
        sandbox.base_url,
        name="sender",
        **SLOW_SEND,
        ENGAGE_SWEEP_INTERVAL="3600",
        **skewed(sender_skew),
    )
    send_prepared_sms(23541, mobile="+48505606707", idempotency_key="skew-1")
    wait_for(lambda: sandbox.state.calls_to("message/sendSingle"), what="the send to start")
    sweeper = start_workers(
        sandbox.base_url,
        name="sweeper",
        **SLOW_SEND,
        ENGAGE_SWEEP_INTERVAL="1",
        **skewed(sweeper_skew),
    )
    seen = set()
    deadline = time.monotonic() + 40
    while (state := delivery_status("skew-1")["state"]) != "sent":
        seen.add(state)
        assert time.monotonic() < deadline, f"not sent; states seen: {seen}"
        time.sleep(0.1)
    assert "dead_lettered" not in seen
    assert dead_letter_events(sender, sweeper) == []
    assert len(sandbox.state.calls_to("message/sendSingle")) == 1
    # kombu's visibility timeout runs on the broker's clock too: no worker was handed the
    # message again while the sender was still running it.
    received = [
        line
        for worker in (sender, sweeper)
        for line in worker.log_text().splitlines()
        if "Task engage.send_single[" in line and "] received" in line
    ]
    assert len(received) == 1, received


def test_a_republished_copy_beside_its_original_sends_once(
    start_workers: WorkerFactory, sandbox: Sandbox, redis_db: redis.Redis
) -> None:
    """Sends queued past the visibility timeout with no worker: the start-up sweep's copies and
    the originals run side by side, and each send goes out once, without a dead letter, even
    with ``ENGAGE_ON_UNKNOWN_OUTCOME=retry``."""
    keys = [f"copy-{n}" for n in range(2)]
    mobiles = [f"4860300{n:04d}" for n in range(len(keys))]
    sandbox.state.add_contacts(
        {"type": "MOBILE", "value": m, "contactId": 710_000 + n} for n, m in enumerate(mobiles)
    )
    sandbox.state.set_faults({"script": {"message/sendSingle": ["delay:3"] * 8}})
    for key, mobile in zip(keys, mobiles, strict=True):
        send_prepared_sms(23541, mobile=mobile, idempotency_key=key)
    time.sleep(11)  # past the workers' visibility timeout (10 s), on the Redis clock too
    worker = start_workers(
        sandbox.base_url,
        ENGAGE_ON_UNKNOWN_OUTCOME="retry",
        ENGAGE_READ_TIMEOUT="5",
        ENGAGE_VISIBILITY_TIMEOUT="10",
    )
    wait_for(
        lambda: all(delivery_status(k)["state"] == "sent" for k in keys),
        timeout=60,
        what="every send sent",
    )
    time.sleep(4)  # a copy still running would call Engage within its 3 s delay
    assert dead_letter_events(worker) == []
    assert sorted(sandbox.state.sends.values()) == [1] * len(keys)
    assert "republished" in worker.log_text()
