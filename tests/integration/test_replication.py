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
from celery.exceptions import Retry
from kombu.exceptions import OperationalError

from tasks.cli.redis_server import RedisServer
from tasks.core.errors import ServiceUnavailable
from tasks.core.request import build_send_request
from tasks.core.send_options import LANE_QUEUES, Priority
from tasks.delivery import outcomes
from tasks.delivery import steps as delivery
from tasks.delivery.runtime import Runtime, install_runtime
from tasks.delivery.steps import StepContext
from tasks.sandbox import Sandbox
from tasks.worker import pipeline
from tasks.worker.app import app
from tasks.worker.failover import RECOVERY_WINDOW, PrimaryWatch, Recovery, republish_unfinished
from tasks.worker.publish import enqueue
from tests.support.broker import Broker, using_broker
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
        assert isinstance(delivery.send(rt, REQUEST, 33457, CTX), outcomes.Retry)
    assert sandbox.state.calls_to("message/sendSingle") == []
    assert rt.ledger.state("k1") == "retrying"
    assert '"event": "held_back"' in caplog.text
    with replica_of(primary, tmp_path / "replica"):
        retry = StepContext(key="k1", task_id="s1", retries=1, task_ids=CTX.task_ids)
        assert isinstance(delivery.send(rt, REQUEST, 33457, retry), outcomes.Sent)
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


def test_a_republish_that_failed_after_a_new_primary_is_tried_again_at_the_next_look(
    primary: RedisServer, broker: Broker
) -> None:
    """The change is seen once; a republish the broker refused is done at the next look."""
    rt = _runtime(primary, "http://127.0.0.1:9", acks=0)
    rt.ledger.claim("queued", REQUEST, ["r1", "s1"])
    recovery = Recovery(PrimaryWatch(rt))
    assert recovery.look(rt, 0.0) is None  # the first look only records the primary
    primary.outage(0)
    with broker.unreachable(), pytest.raises(OperationalError):
        recovery.look(rt, 1.0)
    assert recovery.pending == ["redis"]
    assert recovery.look(rt, 2.0) == ["queued"]
    assert [key for _, key, _ in broker.published] == ["queued"]
    assert recovery.look(rt, 3.0) is None  # done: nothing pending, no change


def test_a_republish_still_failing_after_the_recovery_window_is_left_to_the_sweep(
    primary: RedisServer, broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    """Past RECOVERY_WINDOW the worker stops trying and says the sweep will publish lost sends."""
    rt = _runtime(primary, "http://127.0.0.1:9", acks=0)
    rt.ledger.claim("queued", REQUEST, ["r1", "s1"])
    recovery = Recovery(PrimaryWatch(rt))
    recovery.look(rt, 0.0)
    primary.outage(0)
    with broker.unreachable(), pytest.raises(OperationalError):
        recovery.look(rt, 1.0)
    with caplog.at_level(logging.ERROR, "engage.recovery"):
        assert recovery.look(rt, 1.0 + RECOVERY_WINDOW) is None
    assert recovery.pending == []
    assert "the sweep publishes lost ones" in caplog.text
    assert broker.published == []


def test_a_primary_refusing_writes_for_want_of_replicas_is_an_outage(
    primary: RedisServer, broker: Broker
) -> None:
    """NOREPLICAS (min-replicas-to-write, right after a failover) is ServiceUnavailable."""
    rt = _runtime(primary, "http://127.0.0.1:9", acks=0)
    redis.Redis(port=primary.port).config_set("min-replicas-to-write", 1)
    with pytest.raises(ServiceUnavailable, match="Redis unavailable"):
        enqueue(rt, REQUEST, "k1")
    assert broker.published == []


@contextlib.contextmanager
def step_of_resolve_contact(rt: Runtime, broker_url: str) -> Iterator[Broker]:
    """``engage.resolve_contact`` mid-delivery from the normal lane, publishing to a broker."""
    task = pipeline.resolve_contact
    lane = LANE_QUEUES[Priority.NORMAL]
    install_runtime(rt)
    task.push_request(
        id="r1",
        args=[REQUEST.to_dict(), "k1", ["r1", "s1"]],
        kwargs={},
        retries=0,
        delivery_info={"exchange": "", "routing_key": lane},
        called_directly=False,
        is_eager=False,
    )
    try:
        with using_broker(app, broker_url):
            yield Broker(app)
    finally:
        task.pop_request()
        install_runtime(None)


def redis_unreachable_step(_: Runtime) -> outcomes.StepOutcome:
    """A step cut off by a failover."""
    raise redis.ConnectionError("Connection refused")


@contextlib.contextmanager
def replicas_back_when_waited(server: RedisServer) -> Iterator[list[float]]:
    """Within the block, the worker's first wait ends with ``server`` taking writes again."""
    waits: list[float] = []

    def wait(seconds: float) -> None:
        waits.append(seconds)
        redis.Redis(port=server.port).config_set("min-replicas-to-write", 0)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(time, "sleep", wait)  # the module pipeline waits with
        yield waits


def test_a_retry_waits_for_a_primary_that_takes_writes_not_one_that_answers_ping(
    primary: RedisServer,
) -> None:
    """NOREPLICAS right after a failover: the retry is published once writes work, not dropped."""
    rt = _runtime(primary, "http://127.0.0.1:9", acks=0)
    rt.ledger.claim("k1", REQUEST, ["r1", "s1"])
    refusing = redis.Redis(port=primary.port)
    refusing.config_set("min-replicas-to-write", 1)
    assert refusing.ping()
    with (
        step_of_resolve_contact(rt, primary.url) as broker,
        replicas_back_when_waited(primary) as waits,
    ):
        with pytest.raises(Retry):
            pipeline._step(pipeline.resolve_contact, CTX, "contact/get", redis_unreachable_step)
        (message,) = broker.messages
    assert waits  # it waited for a write to succeed: PING answered all along
    assert message.task == "engage.resolve_contact"
    assert message.headers["retries"] == 1


def test_a_retry_the_broker_refuses_is_published_again_not_dropped(
    primary: RedisServer, tmp_path: Path
) -> None:
    """The ledger takes writes, the broker not yet: the publish is tried again, never dropped."""
    rt = _runtime(primary, "http://127.0.0.1:9", acks=0)
    rt.ledger.claim("k1", REQUEST, ["r1", "s1"])
    broker_server = RedisServer(tmp_path / "broker").start()
    try:
        redis.Redis(port=broker_server.port).config_set("min-replicas-to-write", 1)
        with (
            step_of_resolve_contact(rt, broker_server.url) as broker,
            replicas_back_when_waited(broker_server) as waits,
        ):
            with pytest.raises(Retry):
                pipeline._step(pipeline.resolve_contact, CTX, "contact/get", redis_unreachable_step)
            assert [m.task for m in broker.messages] == ["engage.resolve_contact"]
        assert waits == [pipeline.INFRASTRUCTURE_RETRY_DELAY]
    finally:
        broker_server.stop()
