"""Recovery after a failover: a new Redis primary may lack the last messages the old one took.

Replication is asynchronous, so a failover (or a Redis restarted without persistence) can lose
task messages the broker had acknowledged. The ledger still knows each unfinished send (a claim
is on enough replicas before its handle is returned: :mod:`tasks.state.replication`), but the
ordinary sweep would publish a lost one again only after the visibility timeout (2 hours).

So each worker watches the primaries, once a second: their run id and replication id (both
change when another server becomes primary, or when a Redis restarts). The first worker that
sees a change (``SET ... GET`` on the ledger: one winner) publishes every ``queued`` and
``retrying`` send again at once, a retrying one with the rest of its countdown. Spare copies of
a message that survived are harmless: the ledger, not the broker, decides who sends, and each
copy gets task ids of its own, so it reads as another delivery (``busy``), never as a worker
that died mid-send.

A new primary often refuses writes for a while after the switch (NOREPLICAS, until a replica has
linked to it: ``min-replicas-to-write``), so that first republish may fail part way. The worker
that saw the change then keeps trying, every look, until one republish succeeds or
:data:`RECOVERY_WINDOW` has passed (then the ordinary sweep is left to publish what is lost).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable

import redis
from celery import uuid
from kombu.exceptions import OperationalError

from tasks.core.request import SendRequest
from tasks.core.send_options import DEFAULT_PRIORITY, Priority
from tasks.core.settings import broker_is_redis
from tasks.delivery.runtime import Runtime
from tasks.state import REDIS_UNREACHABLE
from tasks.state.clients import redis_client
from tasks.state.enums import SendState
from tasks.state.records import text
from tasks.worker import publish
from tasks.worker.housekeeping import unserved_lanes

logger = logging.getLogger("engage.recovery")

#: Seconds between two looks at the primaries (one ``INFO`` round trip each).
WATCH_INTERVAL = 1.0
#: Unfinished sends read per recovery (oldest first); a later failover check takes no more.
RECOVERY_BATCH = 100_000
#: What a look raises while a failover goes on: Redis unreachable or read-only, a publish refused.
FAILOVER_ERRORS: tuple[type[Exception], ...] = (OperationalError, *REDIS_UNREACHABLE)
#: Seconds after a primary change within which a failed republish is tried again at every look.
RECOVERY_WINDOW = 300.0


def primary_identity(client: redis.Redis) -> str:
    """The server answering as primary: its run id and replication id."""
    info = client.info("server", "replication")
    return f"{info.get('run_id', '')}:{info.get('master_replid', '')}"


class PrimaryWatch:
    """Tells whether the Redis primaries changed since any worker last looked."""

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
        self._clients: dict[str, redis.Redis] = {"redis": rt.redis}
        broker = rt.settings.broker_url
        if broker != rt.settings.redis_url and broker_is_redis(broker):
            self._clients["broker"] = redis_client(
                rt.settings, rt.settings.broker_url, socket_timeout=5, socket_connect_timeout=5
            )

    def changed(self) -> list[str]:
        """The roles whose primary is not the one last recorded.

        No record yet is no change: either nothing looked before, or the ledger's Redis came
        back empty, and then it holds no unfinished send to publish again either.
        """
        roles = []
        for role, client in self._clients.items():
            identity = primary_identity(client)
            previous = self._rt.redis.set(self._rt.keys.primary(role), identity, get=True)
            if previous is not None and text(previous) != identity:
                roles.append(role)
        return roles


def republish_unfinished(rt: Runtime, *, now: float) -> list[str]:
    """Publish every ``queued`` and ``retrying`` send again, under fresh task ids.

    Not into a lane with sends waiting and no worker consuming it (the sweep's rule,
    :func:`~tasks.worker.housekeeping.unserved_lanes`): another copy there would only wait.
    """
    republished = []
    unserved = unserved_lanes(rt)
    keys = rt.redis.zrange(rt.keys.inflight, 0, RECOVERY_BATCH - 1)
    for raw in keys:
        key = text(raw)
        record = rt.ledger.record(key)
        if not record or record.get("state") not in (SendState.QUEUED, SendState.RETRYING):
            continue
        priority = Priority(record.get("priority", DEFAULT_PRIORITY))
        if priority.value in unserved:
            continue
        request = SendRequest.from_dict(json.loads(record["request"]))
        due_in = float(record.get("retry_at", 0)) - now
        publish.publish(
            request,
            key,
            [uuid(), uuid()],
            deployment=rt.settings.key_prefix,
            priority=priority,
            on_done=record.get("on_done"),
            countdown=due_in if due_in > 0 else None,
        )
        republished.append(key)
    return republished


class Recovery:
    """One worker's part in recovery: look at the primaries, republish until it succeeds.

    The change is seen by one worker only (``SET ... GET``), so that worker remembers it and
    tries again at each look while the republish fails (a new primary refusing writes, a broker
    not back yet), for :data:`RECOVERY_WINDOW` seconds.
    """

    def __init__(self, watch: PrimaryWatch) -> None:
        self._watch = watch
        self._pending: list[str] = []
        self._until = 0.0

    @property
    def pending(self) -> list[str]:
        """The roles whose change is seen and whose sends are not yet published again."""
        return list(self._pending)

    def look(self, rt: Runtime, now: float) -> list[str] | None:
        """One look (``now``: monotonic seconds); the keys published again, or None if none were.

        Raises what the look or the republish raised; a pending recovery stays pending then.
        """
        try:
            roles = self._watch.changed()
        finally:
            if self._pending and now >= self._until:
                logger.error(
                    "new Redis primary (%s): unfinished sends not published again within %.0f s;"
                    " the sweep publishes lost ones after the visibility timeout",
                    ", ".join(self._pending),
                    RECOVERY_WINDOW,
                )
                self._pending = []
        if roles:
            self._pending = sorted(set(self._pending) | set(roles))
            self._until = now + RECOVERY_WINDOW
        if not self._pending:
            return None
        started = time.monotonic()
        keys = republish_unfinished(rt, now=rt.ledger.now())  # retry_at: Redis clock
        logger.warning(
            "new Redis primary (%s): %d unfinished sends published again in %.2f s",
            ", ".join(self._pending),
            len(keys),
            time.monotonic() - started,
        )
        self._pending = []
        return keys


def watch_forever(
    rt_of: Callable[[], Runtime], stop: threading.Event, interval: float = WATCH_INTERVAL
) -> None:
    """Look at the primaries every ``interval`` s; recover at once after a change. Never raises."""
    recovery: Recovery | None = None
    while not stop.is_set():
        try:
            rt = rt_of()
            recovery = recovery or Recovery(PrimaryWatch(rt))
            recovery.look(rt, time.monotonic())
        except FAILOVER_ERRORS as err:  # the failover itself, or the broker not back yet
            if recovery is not None and recovery.pending:
                logger.warning(
                    "republish after a new primary failed (%s): trying again", type(err).__name__
                )
        except Exception:  # a bug: log it with its traceback and try again, never die
            logger.exception("failover watch failed; next look in %.0f s", interval)
        stop.wait(interval)
