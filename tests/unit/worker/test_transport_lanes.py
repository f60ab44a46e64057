"""The broker side of the lanes: which queue a worker fetches from, and how many it may hold."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis

from tasks.worker.app import app
from tasks.worker.transport import (
    FETCH_SHARE_EVERY,
    LANE_CYCLE,
    TRANSPORT,
    LaneCycle,
)
from tests.support.broker import using_broker
from tests.support.environments import REAL_REDIS_URL

URGENT, NORMAL, BULK = "engage.urgent", "engage.normal", "engage.bulk"
LANES = [URGENT, NORMAL, BULK]


def test_fetches_list_the_lanes_highest_first_whatever_the_order_given() -> None:
    """A worker started with -Q bulk,urgent,normal still looks at urgent first."""
    cycle = LaneCycle([BULK, URGENT, NORMAL])
    assert cycle.consume(3) == LANES


def test_each_lower_lane_goes_first_once_in_so_many_fetches() -> None:
    """Out of FETCH_SHARE_EVERY fetches, one starts with normal and one with bulk."""
    cycle = LaneCycle(LANES)
    firsts = [cycle.consume(3)[0] for _ in range(FETCH_SHARE_EVERY)]
    assert (firsts.count(NORMAL), firsts.count(BULK)) == (1, 1)


def test_a_queue_that_is_no_lane_ranks_beside_normal() -> None:
    """Draining the old default queue (-Q celery) puts it after normal, before bulk."""
    assert LaneCycle([BULK, "celery", URGENT, NORMAL]).consume(4) == [
        URGENT,
        NORMAL,
        "celery",
        BULK,
    ]


@pytest.fixture
def connection(real_redis: redis.Redis) -> Iterator[Any]:
    """A broker connection of the app to real Redis through the package's transport and cycle."""
    options = {"queue_order_strategy": LANE_CYCLE}
    with (
        using_broker(
            app, REAL_REDIS_URL, broker_transport=TRANSPORT, broker_transport_options=options
        ),
        app.connection_for_read() as conn,
    ):
        yield conn


def test_a_worker_takes_the_urgent_message_before_older_bulk_ones(
    connection: Any, real_redis: redis.Redis
) -> None:
    """Three bulk messages queued before one urgent one: the first fetch returns the urgent one."""
    queues = {lane: app.amqp.queues[lane] for lane in (BULK, URGENT)}
    real_redis.delete(BULK, URGENT)
    received: list[object] = []

    def take(body: object, message: Any) -> None:
        received.append(body)
        message.ack()

    try:
        producer = connection.Producer()
        for body, lane in (("b1", BULK), ("b2", BULK), ("b3", BULK), ("u1", URGENT)):
            queue = queues[lane]
            producer.publish(body, exchange=queue.exchange, routing_key=lane, declare=[queue])
        # Consumed in the order a worker given -Q engage.bulk,engage.urgent would list them.
        with connection.Consumer([queues[BULK], queues[URGENT]], callbacks=[take]):
            connection.drain_events(timeout=5)
        assert received == ["u1"]
    finally:
        real_redis.delete(BULK, URGENT)
