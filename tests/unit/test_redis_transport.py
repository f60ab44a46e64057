"""The broker transport: kombu's Redis transport with one client object per channel."""

from __future__ import annotations

import uuid
from unittest import mock

import redis
from kombu.connection import Connection

from tasks.worker.transport import TRANSPORT
from tests.conftest import REAL_REDIS_DB, celery_python


def test_publishes_reuse_one_client_and_arrive(real_redis: redis.Redis) -> None:
    """Ten publishes build at most two client objects (stock kombu: one each) and all arrive."""
    queue_name = f"test-transport-{uuid.uuid4().hex}"
    url = f"redis://127.0.0.1:6379/{REAL_REDIS_DB}"
    created = mock.Mock(wraps=redis.Redis.__init__)

    def counting_init(self: redis.Redis, *args: object, **kwargs: object) -> None:
        created(self, *args, **kwargs)

    with Connection(url, transport=TRANSPORT) as conn:  # type: ignore[no-untyped-call]
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


def test_celeryconfig_uses_it_for_plain_redis_brokers_only() -> None:
    """redis:// gets this transport; rediss:// (TLS) and other brokers keep kombu's choice."""
    code = "import celeryconfig; print(getattr(celeryconfig, 'broker_transport', None))"
    chosen = {
        url: celery_python(
            code, CELERY_BROKER_URL=url, REDIS_URL="redis://127.0.0.1:9/0"
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
