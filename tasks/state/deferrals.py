"""Sends held for quiet hours: in Redis, not as Celery ETA tasks.

An ETA task sits in a worker's memory, unacknowledged, and the Redis transport hands it out again
once it outlasts the visibility timeout; a night of quiet hours is far longer than that. So a
deferred send is a ledger record in state ``deferred`` (``not_before`` in its status) and a
member of ``{p}:deferred`` scored by when it may go. The workers' sweep
(:mod:`tasks.worker.housekeeping`) takes those whose time came (on the Redis clock), puts each
back to ``queued`` with new task ids and publishes it in its lane, so it shares the one budget
like any other send. A send whose deadline passed while it waited ends ``expired`` instead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import redis

from tasks.core.request import SendRequest
from tasks.core.send_options import Priority
from tasks.state import scripts
from tasks.state.keys import RedisKeys
from tasks.state.records import text


@dataclass(frozen=True)
class Released:
    """A deferred send put back to queued: publish it under these task ids in this lane."""

    request: SendRequest
    priority: Priority
    #: The completion callback the send names (None: none), carried in the task message.
    on_done: str | None = None


class DeferredSends:
    """The set of deferred sends and the scripts that move sends in and out of it."""

    def __init__(self, client: redis.Redis, *, keys: RedisKeys, retention: float) -> None:
        self._redis = client
        self._keys = keys
        self._retention_ms = int(retention * 1000)
        self._defer = scripts.register(client, "defer")
        self._release = scripts.register(client, "release_deferred")

    def defer(self, key: str, not_before: float) -> bool:
        """Hold a queued or retrying send until ``not_before`` (epoch s); False if it is not."""
        k = self._keys
        return bool(
            self._defer(
                keys=[k.send(key), k.inflight, k.deferred],
                args=[repr(not_before), key, self._retention_ms],
            )
        )

    def due(self, limit: int = 1000) -> list[str]:
        """Deferred keys whose time came, by the Redis clock, earliest first."""
        seconds, micros = self._redis.time()
        now = seconds + micros / 1_000_000
        raw = self._redis.zrangebyscore(self._keys.deferred, "-inf", now, start=0, num=limit)
        return [text(k) for k in raw]

    def release(self, key: str, task_ids: list[str]) -> Released | str:
        """Back to queued under ``task_ids``: what to publish; else ``expired`` or ``gone``."""
        k = self._keys
        reply = self._release(
            keys=[k.send(key), k.deferred, k.inflight, k.callbacks],
            args=[key, task_ids[-1], json.dumps(task_ids), self._retention_ms],
        )
        outcome = text(reply[0])
        if outcome != "released":
            return outcome
        request = SendRequest.from_dict(json.loads(text(reply[1])))
        return Released(request, Priority(text(reply[2])), text(reply[3]) or None)

    def depth(self) -> int:
        """How many sends are deferred."""
        return int(self._redis.zcard(self._keys.deferred))
