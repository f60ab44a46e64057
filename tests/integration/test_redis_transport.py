"""The broker transport: kombu's Redis transport with one client object per channel."""

from __future__ import annotations

import uuid
from unittest import mock

import pytest
import redis
from kombu.connection import Connection

from tasks.worker.transport import TRANSPORT
from tests.support.environments import REAL_REDIS_URL

pytestmark = pytest.mark.integration


def test_publishes_reuse_one_client_and_arrive(real_redis: redis.Redis) -> None:
    """Ten publishes build at most two client objects (stock kombu: one each) and all arrive."""
    queue_name = f"test-transport-{uuid.uuid4().hex}"
    created = mock.Mock(wraps=redis.Redis.__init__)

    def counting_init(self: redis.Redis, *args: object, **kwargs: object) -> None:
        created(self, *args, **kwargs)

    with Connection(REAL_REDIS_URL, transport=TRANSPORT) as conn:  # type: ignore[no-untyped-call]
        queue = conn.SimpleQueue(queue_name)
        try:
            with mock.patch.object(redis.Redis, "__init__", counting_init):
                for n in range(10):
                    queue.put({"n": n})
            received = []
            for _ in range(10):
                message = queue.get(timeout=2)
                received.append(message.payload["n"])
                message.ack()
        finally:
            queue.close()
            real_redis.delete(queue_name)
    assert received == list(range(10))
    assert created.call_count <= 2
