"""The durability barrier and the recovery after a new primary, on real Redis servers of our own.

``WAIT`` needs a real server (fakeredis has none) and replicas: each test starts a primary and,
where it needs one, a replica of it, on free loopback ports.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tasks.cli.redis_server import RedisServer
from tasks.delivery import steps as delivery
from tasks.delivery.outcomes import Retry, Sent
from tasks.delivery.runtime import Runtime
from tasks.delivery.steps import StepContext
from tasks.errors import ServiceUnavailable
from tasks.request import build_send_request
from tasks.sandbox import Sandbox
from tasks.worker.failover import PrimaryWatch, republish_unfinished
from tasks.worker.publish import enqueue
from tests.support.broker import Broker
from tests.support.environments import make_settings

pytestmark = pytest.mark.integration

REQUEST = build_send_request(23541, mobile="+48505606707", parameters={"firstName": "Ann"})
CTX = StepContext(key="k1", task_id="s1", retries=0, task_ids=["r1", "s1"])


@pytest.fixture
def primary(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis server of this test's own, with no replica."""
    server = RedisServer(tmp_path / "primary").start()
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def replica_of(primary: RedisServer, data_dir: Path) -> Iterator[RedisServer]:
    """A replica of ``primary``, linked before the block starts."""
    server = RedisServer(data_dir, persistent=False).start()
    client = redis.Redis(port=server.port)
    client.replicaof("127.0.0.1", primary.port)
    try:
        deadline = time.monotonic() + 20
        while client.info("replication").get("master_link_status") != "up":
            assert time.monotonic() < deadline, "the replica did not link"
            time.sleep(0.05)
        yield server
    finally:
        server.stop()


def _runtime(server: RedisServer, base_url: str, acks: int) -> Runtime:
    settings = make_settings(
        base_url, ENGAGE_REPLICA_ACKS=str(acks), ENGAGE_REPLICA_ACK_TIMEOUT="1000"
    )
    return Runtime.build(settings, redis_client=redis.Redis.from_url(server.url))


def test_no_engage_call_on_a_lease_no_replica_holds(
    primary: RedisServer, sandbox: Sandbox, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Too few replica acks on the lease: Engage is not called, the send retries; with one, sent."""
    rt = _runtime(primary, sandbox.base_url, acks=1)
    rt.ledger.claim("k1", REQUEST, CTX.task_ids)
    with caplog.at_level(logging.INFO, "engage.delivery"):
        assert isinstance(delivery.send(rt, REQUEST, 33457, CTX), Retry)
    assert sandbox.state.calls_to("message/sendSingle") == []
    assert rt.ledger.state("k1") == "retrying"
    assert '"event": "held_back"' in caplog.text
    with replica_of(primary, tmp_path / "replica"):
        retry = StepContext(key="k1", task_id="s1", retries=1, task_ids=CTX.task_ids)
        assert isinstance(delivery.send(rt, REQUEST, 33457, retry), Sent)
    assert sandbox.state.sends == {(23541, 33457): 1}


def test_enqueue_refused_and_released_when_no_replica_holds_the_claim(
    primary: RedisServer, broker: Broker, tmp_path: Path
) -> None:
    """Too few replica acks on the claim: ServiceUnavailable, no record, nothing published."""
    rt = _runtime(primary, "http://127.0.0.1:9", acks=1)
    with pytest.raises(ServiceUnavailable, match=r"0 of 1 replica.* within 1000 ms"):
        enqueue(rt, REQUEST, "k1")
    assert rt.ledger.record("k1") == {}
    assert broker.published == []
    with replica_of(primary, tmp_path / "replica"):
        handle = enqueue(rt, REQUEST, "k1")
    assert handle.created
    assert [key for _, key, _ in broker.published] == ["k1"]


def test_a_restarted_primary_republishes_unfinished_sends_at_once(
    primary: RedisServer, broker: Broker
) -> None:
    """A new primary (here: a restart) is seen once; queued sends are published again, fresh ids."""
    rt = _runtime(primary, "http://127.0.0.1:9", acks=0)
    rt.ledger.claim("queued", REQUEST, ["r1", "s1"])
    rt.ledger.claim("sent", REQUEST, ["r2", "s2"])
    rt.ledger.begin_send("sent", "s2:0", 33457)
    rt.ledger.mark_sent("sent")
    watch = PrimaryWatch(rt)
    assert watch.changed() == []  # the first look only records the primary
    assert watch.changed() == []
    primary.outage(0)
    assert watch.changed() == ["redis"]
    assert watch.changed() == []  # one worker recovers: the change is seen once
    assert republish_unfinished(rt, now=time.time()) == ["queued"]
    ((_, key, task_ids),) = broker.published
    assert key == "queued"
    assert set(task_ids).isdisjoint({"r1", "s1"})


def test_a_primary_refusing_writes_for_want_of_replicas_is_an_outage(
    primary: RedisServer, broker: Broker
) -> None:
    """NOREPLICAS (min-replicas-to-write, right after a failover) is ServiceUnavailable."""
    rt = _runtime(primary, "http://127.0.0.1:9", acks=0)
    redis.Redis(port=primary.port).config_set("min-replicas-to-write", 1)
    with pytest.raises(ServiceUnavailable, match="Redis unavailable"):
        enqueue(rt, REQUEST, "k1")
    assert broker.published == []
