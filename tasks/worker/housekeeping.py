"""Housekeeping on beat: ``engage.dlq_cleanup`` (hourly) and ``engage.sweep_stuck`` (every minute).

The sweep finds sends that stopped moving: one left in ``sending`` past its lease (its worker
died mid-call, so Engage may have sent it) is dead-lettered as ``outcome_unknown``; one left
``queued`` or ``retrying`` longer than the broker's visibility timeout lost its message and is
published again under the same key, in its lane, with new task ids (the original message may
still exist: kombu restores unacknowledged messages, and a copy under the same ids would pass for
the original delivered again after its worker died). The ledger keeps the two copies from
sending twice. It also publishes completion callbacks whose worker did not
(:mod:`tasks.worker.completion_callbacks`), and releases deferred sends whose quiet hours ended. A
lane with sends waiting in its queue and no worker seen consuming it lately
(:mod:`tasks.state.lane_consumers`) gets a warning naming the ``-Q`` that would serve it, and its
sends are not published again meanwhile (another copy would only wait). Every time compared here
is the Redis server's clock.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from typing import Any

from celery import uuid

from tasks.core.request import SendRequest
from tasks.core.send_options import DEFAULT_PRIORITY, Priority
from tasks.core.settings import broker_is_redis
from tasks.delivery.events import log_event
from tasks.delivery.runtime import Runtime, current_runtime
from tasks.state.deferrals import Released
from tasks.state.enums import Reason, SendState
from tasks.state.records import iso
from tasks.worker import completion_callbacks, publish
from tasks.worker.app import MaskedTask, app, engage_settings

logger = logging.getLogger("engage.housekeeping")

#: Records read per sweep (oldest first); the next minute's sweep takes the rest.
SWEEP_BATCH = 1000
#: One sweep at a time across every worker and beat (seconds the lock is held at most).
SWEEP_LOCK_SECONDS = 55
STUCK_DETAIL = "stuck in sending past its lease"


@dataclass
class SweepResult:
    """What one sweep did, by key."""

    dead_lettered: list[str] = field(default_factory=list)
    republished: list[str] = field(default_factory=list)
    forgotten: list[str] = field(default_factory=list)
    #: Keys whose completion callback this sweep published (its worker had not).
    callbacks: list[str] = field(default_factory=list)
    #: Deferred sends whose quiet hours ended: published again in their lane.
    released: list[str] = field(default_factory=list)
    skipped: bool = False
    #: Lanes with sends waiting and no worker seen consuming them: queue length by lane.
    unserved: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (the task's result)."""
        return asdict(self)


@app.task(name="engage.dlq_cleanup", base=MaskedTask)
def dlq_cleanup() -> int:
    """Drop dead-letter entries past ``ENGAGE_DLQ_MAX_AGE_DAYS``; returns how many went."""
    dropped = current_runtime(engage_settings()).dead_letters.cleanup()
    if dropped:
        logger.info("dead-letter cleanup dropped %d entries past their age", dropped)
    return dropped


@app.task(name="engage.sweep_stuck", base=MaskedTask)
def sweep_stuck() -> dict[str, Any]:
    """Dead-letter sends stuck in ``sending``; publish again sends whose message was lost."""
    return sweep(current_runtime(engage_settings())).to_dict()


def sweep(rt: Runtime, *, now: float | None = None) -> SweepResult:
    """One sweep over the oldest unfinished sends (see the module docstring).

    ``now`` is the Redis server's clock unless a test gives it.
    """
    result = SweepResult()
    if now is None:
        now = rt.ledger.now()
    lock = rt.keys.sweep_lock
    if not rt.redis.set(lock, repr(now), nx=True, ex=SWEEP_LOCK_SECONDS):
        result.skipped = True
        return result
    try:
        result.unserved = unserved_lanes(rt)
        # A send cannot be stuck before its lease could have run out.
        stale = rt.ledger.stale_inflight(rt.settings.lease_seconds, limit=SWEEP_BATCH, now=now)
        for key in stale:
            _sweep_one(rt, key, now, result)
        _release_deferred(rt, result)
        # After the dead letters above: theirs are published now, not a sweep later.
        result.callbacks = completion_callbacks.publish_stale(rt)
        for key in result.dead_lettered:
            if completion_callbacks.publish_due(rt, key):
                result.callbacks.append(key)
    finally:
        rt.redis.delete(lock)
    return result


def _sweep_one(rt: Runtime, key: str, now: float, result: SweepResult) -> None:
    record = rt.ledger.record(key)
    if not record:
        # The record expired but its inflight entry stayed: nothing left to act on.
        rt.ledger.forget_inflight(key)
        result.forgotten.append(key)
        return
    state = SendState(record["state"])
    if "request" not in record:
        return  # final meanwhile (a final record keeps no request): nothing to act on
    task_ids: list[str] = json.loads(record.get("task_ids", "[]"))
    request = SendRequest.from_dict(json.loads(record["request"]))
    if state == SendState.SENDING and float(record.get("lease_until", now)) < now:
        if rt.dead_letters.add(
            key,
            reason=Reason.OUTCOME_UNKNOWN,
            detail=f"{STUCK_DETAIL} (it ran out at {iso(record.get('lease_until'))})",
            error=None,
            task_ids=task_ids,
            lapsed_lease=True,  # its holder may have renewed or given it back since the read
        ):
            log_event(
                "dead_lettered",
                key=key,
                task_id=record.get("task_id"),
                recipient=request.identifier.masked(),
                reason=Reason.OUTCOME_UNKNOWN,
                detail=STUCK_DETAIL,
                lease_ran_out=iso(record.get("lease_until")),
            )
            result.dead_lettered.append(key)
        return
    # Past the visibility timeout, Redis would have handed an unacked message out again.
    lost_after = rt.settings.visibility_timeout
    if (
        state not in (SendState.QUEUED, SendState.RETRYING)
        or _idle_since(record) > now - lost_after
    ):
        return
    priority = Priority(record.get("priority", DEFAULT_PRIORITY))
    if priority.value in result.unserved:
        return  # no worker consumes the lane: warned about above; another copy would only wait
    # New ids, recorded only while the send is still idle: the next sweep waits a whole
    # visibility timeout again, so a republished send waiting in a long queue is not lost.
    fresh = [uuid(), uuid()]
    if not rt.ledger.republish(key, fresh, lost_after):
        return
    publish.publish(
        request,
        key,
        fresh,
        priority=priority,
        on_done=record.get("on_done"),
        deployment=rt.settings.key_prefix,
    )
    logger.warning(
        "republished %s send %s (%s): no progress for over %.0f s",
        state,
        key,
        request.identifier.masked(),
        lost_after,
    )
    result.republished.append(key)


def _release_deferred(rt: Runtime, result: SweepResult) -> None:
    """Publish the deferred sends whose quiet hours ended (Redis clock), under new task ids."""
    for key in rt.deferrals.due(limit=SWEEP_BATCH):
        task_ids = [uuid(), uuid()]
        released = rt.deferrals.release(key, task_ids)
        if isinstance(released, Released):
            # Published like a new send: its lane's queue, its lane's share of the one budget.
            publish.publish(
                released.request,
                key,
                task_ids,
                priority=released.priority,
                on_done=released.on_done,
                deployment=rt.settings.key_prefix,
            )
            log_event(
                "released",
                key=key,
                task_id=task_ids[-1],
                recipient=released.request.identifier.masked(),
                priority=released.priority,
            )
            result.released.append(key)
        elif released == "expired":
            log_event("expired", key=key, detail="the deadline passed during quiet hours")
            if completion_callbacks.publish_due(rt, key):
                result.callbacks.append(key)


def _idle_since(record: dict[str, str]) -> float:
    # A retrying send is not idle before its retry was due.
    return max(float(record.get("updated_at", 0)), float(record.get("retry_at", 0)))


#: A worker not heard from for this many sweep intervals no longer counts as a lane's consumer.
CONSUMER_SILENCE_INTERVALS = 3


def unserved_lanes(rt: Runtime) -> dict[str, int]:
    """Lanes whose queue holds messages while no worker reported consuming them; warned about."""
    within = CONSUMER_SILENCE_INTERVALS * rt.settings.sweep_interval
    unserved: dict[str, int] = {}
    for lane, queue in rt.settings.lane_queues.items():
        if rt.lane_consumers.live(lane.value, within):
            continue
        waiting = _queue_length(rt, queue)
        if waiting:
            unserved[lane.value] = waiting
            logger.warning(
                "lane %s: %d messages waiting in %s and no worker consumes it (none seen for "
                "%.0f s): start one with -Q %s; its sends are not published again meanwhile",
                lane.value,
                waiting,
                queue,
                within,
                queue,
            )
    return unserved


def _queue_length(rt: Runtime, queue: str) -> int:
    """Messages waiting in a broker queue (Redis brokers; 0 where it cannot be read)."""
    if not broker_is_redis(rt.settings.broker_url):
        return 0
    with app.connection_for_write() as connection:
        client = getattr(connection.default_channel, "client", None)  # kombu's Redis channel
        return 0 if client is None else int(client.llen(queue))
