"""The package's Celery app on kombu's in-memory broker: the real publish path, read back.

Unit tests publish through ``apply_async`` exactly as production does (masked argument reprs,
the chain in one message, the task ids); only the broker differs. ``memory://`` keeps messages
in this process, so nothing a unit test publishes can reach a Redis, and :class:`Broker` reads
them back with a kombu consumer to show what a worker would receive.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from celery import Celery

from tasks.core.request import SendRequest
from tasks.core.send_options import LANE_QUEUES
from tests.support.environments import NOWHERE_REDIS_URL

#: The priority lanes' queues, highest first: where every task of the package is published.
QUEUES = tuple(LANE_QUEUES.values())
MEMORY_URL = "memory://"
#: Broker settings for a broker that refuses connections: no publish retries and no reconnect
#: attempts (kombu's ``max_retries``), so the refusal comes at once; after Celery's and kombu's
#: default retrying (0.6 s) the outcome is the same.
REFUSE_AT_ONCE: dict[str, Any] = {
    "task_publish_retry": False,
    "broker_transport_options": {"max_retries": 0},
}


@dataclass(frozen=True)
class Message:
    """One task message as a worker receives it (Celery protocol 2)."""

    task: str
    task_id: str
    args: list[Any]
    kwargs: dict[str, Any]
    #: Signatures the worker publishes after this task, last first (Celery's ``chain`` option).
    chain: list[dict[str, Any]]
    headers: dict[str, Any]
    #: The queue it was published to (a priority lane's).
    queue: str = ""

    @classmethod
    def decode(cls, headers: dict[str, Any], body: list[Any], queue: str = "") -> Message:
        """From a kombu message's headers and decoded body ``[args, kwargs, embed]``."""
        args, kwargs, embed = body
        return cls(
            task=headers["task"],
            task_id=headers["id"],
            args=args,
            kwargs=kwargs,
            chain=embed.get("chain") or [],
            headers=headers,
            queue=queue,
        )

    @property
    def send(self) -> tuple[SendRequest, str, list[str]]:
        """The send this message starts: ``(request, key, task_ids)``.

        AssertionError unless it is the documented chain: ``engage.resolve_contact`` under the
        first task id, carrying ``engage.send_single`` with the same arguments and the second id;
        both with the same ``meta``.
        """
        data, key, task_ids = self.args
        shape = (self.task, self.task_id, self.kwargs, _steps(self.chain))
        # Both steps carry the same meta (deployment, lane, callback, when queued).
        meta = {"meta": self.kwargs.get("meta")}
        expected: tuple[Any, ...] = (
            "engage.resolve_contact",
            task_ids[0],
            meta,
            [("engage.send_single", [data, key, task_ids], meta, task_ids[1])],
        )
        if shape != expected:
            raise AssertionError(f"not a send chain: {shape!r}, expected {expected!r}")
        return SendRequest.from_dict(data), key, list(task_ids)


def _steps(chain: list[dict[str, Any]]) -> list[tuple[str, Any, Any, Any]]:
    return [(s["task"], s["args"], s["kwargs"], s["options"].get("task_id")) for s in chain]


class Broker:
    """The memory broker ``app`` publishes to; what arrived there, oldest first."""

    def __init__(self, app: Celery) -> None:
        self.app = app
        self._received: list[Message] = []

    @property
    def messages(self) -> list[Message]:
        """Every message published to the lanes' queues so far (by queue, highest lane first)."""
        self._drain()
        return list(self._received)

    @property
    def published(self) -> list[tuple[SendRequest, str, list[str]]]:
        """Every send published so far as ``(request, key, task_ids)``: see :attr:`Message.send`."""
        return [message.send for message in self.messages]

    @contextmanager
    def unreachable(self) -> Iterator[None]:
        """Within the block the broker refuses connections, as a Redis that is down does."""
        with using_broker(self.app, NOWHERE_REDIS_URL, **REFUSE_AT_ONCE):
            yield

    def purge(self) -> None:
        """Drop whatever is queued and forget what was read."""
        self._drain()
        self._received.clear()

    def _drain(self) -> None:
        with self.app.connection_for_read() as connection:
            for name in QUEUES:
                queue = connection.SimpleQueue(name, no_ack=True, accept=["json"])
                try:
                    while True:
                        try:
                            message = queue.get_nowait()
                        except queue.Empty:
                            break
                        self._received.append(
                            Message.decode(message.headers, message.payload, name)
                        )
                finally:
                    queue.close()


@contextmanager
def using_broker(app: Celery, url: str, **conf: Any) -> Iterator[Celery]:
    """``app`` publishing to and reading from ``url`` within the block."""
    # Celery reads CELERY_BROKER_URL from the environment before broker_url, but the read and
    # write URLs from the configuration first (CELERY_BROKER_READ_URL/WRITE_URL are never set
    # here). The configuration may name the package's Redis transport, which would beat the URL.
    if {"CELERY_BROKER_READ_URL", "CELERY_BROKER_WRITE_URL"} & os.environ.keys():
        raise RuntimeError("unset CELERY_BROKER_READ_URL and CELERY_BROKER_WRITE_URL for tests")
    changes = {
        "broker_read_url": url,
        "broker_write_url": url,
        "broker_transport": None,
        "broker_transport_options": {},
        **conf,
    }
    saved = {name: app.conf.get(name) for name in changes}
    _reconfigure(app, changes)
    try:
        yield app
    finally:
        _reconfigure(app, saved)


def _reconfigure(app: Celery, values: dict[str, Any]) -> None:
    app.conf.update(values)
    # Celery builds its connection and producer pools at the first publish and keeps them; this
    # is how it forgets them after a fork (Celery._after_fork), so the next publish uses the URL.
    app._pool = None
    app.amqp._producer_pool = None


@contextmanager
def memory_broker(app: Celery) -> Iterator[Broker]:
    """``app`` on an empty memory broker within the block; emptied again afterwards."""
    with using_broker(app, MEMORY_URL):
        broker = Broker(app)
        broker.purge()
        try:
            yield broker
        finally:
            broker.purge()
