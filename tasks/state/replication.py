"""The durability barrier: a write counts only once ``ENGAGE_REPLICA_ACKS`` replicas hold it.

Redis replicates asynchronously, so a write the primary acknowledged can vanish in a failover: a
lease lost that way lets the redelivered task send a second time. ``WAIT n timeout`` blocks until
``n`` replicas acknowledged every write made *on the same connection* before it, so the script
and its ``WAIT`` go out in one pipeline (one connection, one round trip); a ``WAIT`` from the pool
on another connection would prove nothing about this write.

``WAIT`` is not consensus: a replica that holds the write may still not be the one promoted (the
sentinels pick the most up-to-date replica they can reach, so with one replica lagging the other
this is rare, not impossible). ``docs/design.md`` names the window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis
from redis.commands.core import Script
from redis.exceptions import NoScriptError


@dataclass(frozen=True)
class Replicated:
    """A script's reply, and whether enough replicas hold what it wrote."""

    reply: Any
    #: Replicas that acknowledged the write (None: no barrier asked for).
    acks: int | None
    held: bool


class ReplicaBarrier:
    """Runs a script and, when replicas are required, ``WAIT`` on the same connection."""

    def __init__(self, client: redis.Redis, *, replicas: int, timeout_ms: float) -> None:
        self._redis = client
        self.replicas = replicas
        self.timeout_ms = max(1, int(timeout_ms))

    def run(self, script: Script, keys: Sequence[Any], args: Sequence[Any]) -> Replicated:
        """``script(keys, args)``, then ``WAIT`` (when replicas are required)."""
        if self.replicas <= 0:
            return Replicated(script(keys=list(keys), args=list(args)), None, True)
        try:
            reply, acks = self._pipelined(script, keys, args)
        except NoScriptError:
            # A new primary (or a restarted one) has not seen the script yet.
            self._redis.script_load(script.script)
            reply, acks = self._pipelined(script, keys, args)
        return Replicated(reply, int(acks), int(acks) >= self.replicas)

    def _pipelined(self, script: Script, keys: Sequence[Any], args: Sequence[Any]) -> list[Any]:
        # Not script(client=pipe): redis-py then asks SCRIPT EXISTS on every execute (a round trip).
        pipe = self._redis.pipeline(transaction=False)
        pipe.evalsha(script.sha, len(keys), *keys, *args)
        pipe.wait(self.replicas, self.timeout_ms)
        reply: list[Any] = pipe.execute()
        return reply

    def describe(self, acks: int | None) -> str:
        """Why a write was not held, for errors and logs."""
        return (
            f"{acks or 0} of {self.replicas} replica(s) acknowledged the write within "
            f"{self.timeout_ms} ms (ENGAGE_REPLICA_ACKS)"
        )
