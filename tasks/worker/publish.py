"""Publishing a send: claim its key in the ledger, then publish the chain in one message.

Used by the public API, the beat schedules and the housekeeping sweep; nothing is half-done: a
claim whose publish failed is released again, and so is one whose answer was lost. Redis and
broker outages come out as ServiceUnavailable.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from dataclasses import asdict, dataclass
from typing import Any

from celery import uuid

from tasks.core.errors import IdempotencyConflict, ServiceUnavailable
from tasks.core.outages import unavailable_as
from tasks.core.request import SendRequest
from tasks.core.send_options import DEFAULT_PRIORITY, Priority, lane_queues
from tasks.core.sending_policy import Deadline, resolve_deadline
from tasks.delivery import policy
from tasks.delivery.context import SendMeta
from tasks.delivery.events import log_event
from tasks.delivery.runtime import Runtime
from tasks.state.enums import ClaimOutcome, SendState
from tasks.state.ledger import Claim
from tasks.worker import completion_callbacks
from tasks.worker.pipeline import resolve_contact, send_single


@dataclass(frozen=True)
class SendHandle:
    """What the caller gets back: the key to ask about, the task id to find in Flower."""

    key: str
    task_id: str
    state: str
    #: False when the key was known already: nothing new was enqueued.
    created: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON form (the CLI prints it)."""
        return asdict(self)


def enqueue(
    rt: Runtime,
    request: SendRequest,
    key: str,
    *,
    priority: Priority = DEFAULT_PRIORITY,
    on_done: str | None = None,
    deadline: Deadline | None = None,
    create_contact: bool | None = None,
) -> SendHandle:
    """Claim ``key`` for ``request`` and publish the chain, in ``priority``'s lane, if it is new.

    ``on_done`` (else ``ENGAGE_ON_DONE_TASK``) is kept in the record: the Celery task published
    with the send's final status (:mod:`tasks.worker.completion_callbacks`). Raises
    IdempotencyConflict, or ServiceUnavailable when Redis or the broker does not answer; either way
    no claim of this call is left behind (as far as Redis lets it be released).

    The sending policy (``deadline``, ``create_contact``, the opt-out list, quiet hours) is
    recorded by the claim: a recipient on the opt-out list ends ``suppressed`` at once, a send
    in quiet hours is created ``deferred``; neither is published now.
    """
    task_ids = [uuid(), uuid()]
    on_done = on_done or rt.settings.on_done_task
    claim = _claim(
        rt,
        request,
        key,
        task_ids,
        priority=priority,
        on_done=on_done,
        deadline=deadline or resolve_deadline(None, None, priority, rt.settings.policy, now=0),
        create_contact=create_contact,
    )
    if claim.outcome == ClaimOutcome.CONFLICT:
        raise IdempotencyConflict(key)
    if claim.outcome == ClaimOutcome.CREATED and claim.state != SendState.QUEUED:
        _held_by_policy(rt, request, key, claim, priority)
    elif claim.outcome == ClaimOutcome.CREATED:
        try:
            publish_for(rt, request, key, task_ids, priority=priority, on_done=on_done)
        except BaseException:
            # Nothing half-done: without a published task the claim must not block a retry.
            _release(rt, key, task_ids)
            raise
        log_event(
            "enqueued",
            key=key,
            task_id=task_ids[-1],
            recipient=request.identifier.masked(),
            message_id=request.message_id,
            priority=priority,
        )
    else:
        log_event("duplicate", key=key, task_id=claim.task_id, state=claim.state)
    return SendHandle(
        key=key,
        task_id=claim.task_id,
        state=claim.state,
        created=claim.outcome == ClaimOutcome.CREATED,
    )


def _held_by_policy(
    rt: Runtime, request: SendRequest, key: str, claim: Claim, priority: Priority
) -> None:
    """A new send the policy holds back at enqueue: opted out (final) or deferred."""
    fields: dict[str, object] = {}
    if claim.state == SendState.DEFERRED:
        fields["not_before"] = rt.ledger.status(key).get("not_before")
    log_event(
        str(claim.state),
        key=key,
        task_id=claim.task_id,
        recipient=request.identifier.masked(),
        message_id=request.message_id,
        priority=priority,
        **fields,
    )
    if claim.state == SendState.SUPPRESSED:
        # Final at enqueue: its callback goes out now (the sweep would, a little later).
        completion_callbacks.publish_due(rt, key)


def _claim(
    rt: Runtime,
    request: SendRequest,
    key: str,
    task_ids: list[str],
    *,
    priority: Priority,
    on_done: str | None,
    deadline: Deadline,
    create_contact: bool | None,
) -> Claim:
    try:
        with unavailable_as("redis", rt.settings.redis_url):
            rt.eviction_guard.check()  # an evicting Redis would forget this send and resend it
            # Quiet hours are reckoned on the Redis clock, as the sweep that releases them is.
            claim_policy = policy.claim_policy(
                rt, request, priority, deadline, create_contact=create_contact
            )
            claim = rt.ledger.claim(
                key, request, task_ids, priority=priority, on_done=on_done, policy=claim_policy
            )
    except ServiceUnavailable:
        # A timeout can come after the script ran: undo a claim that may exist, if Redis lets us.
        _release(rt, key, task_ids)
        raise
    if claim.outcome == ClaimOutcome.EXISTS and claim.task_id == task_ids[-1]:
        # Our own claim: redis-py retried a claim whose first answer was lost.
        claim = dataclasses.replace(claim, outcome=ClaimOutcome.CREATED)
    if not claim.held:
        _refuse_unreplicated(rt, claim, key, task_ids)
    return claim


def _refuse_unreplicated(rt: Runtime, claim: Claim, key: str, task_ids: list[str]) -> None:
    """Fewer replicas than ``ENGAGE_REPLICA_ACKS`` hold the claim: a failover could lose it.

    A handle is returned only for a claim that survives a failover. Our own claim is released
    (so the caller's retry with the same key claims afresh); another call's is left alone.
    """
    if claim.outcome == ClaimOutcome.CREATED:
        _release(rt, key, task_ids)
    raise ServiceUnavailable("redis", rt.settings.redis_url, rt.ledger.barrier.describe(claim.acks))


def _release(rt: Runtime, key: str, task_ids: list[str]) -> None:
    # Only a record still carrying this call's fresh task id is removed, so a failed release is
    # the worst case: the sweep publishes that send later under its key (never twice).
    with contextlib.suppress(ServiceUnavailable), unavailable_as("redis", rt.settings.redis_url):
        rt.ledger.release_unpublished(key, task_ids[-1])


def publish_for(
    rt: Runtime,
    request: SendRequest,
    key: str,
    task_ids: list[str],
    *,
    priority: Priority = DEFAULT_PRIORITY,
    on_done: str | None = None,
) -> None:
    """:func:`publish` to ``rt``'s deployment; ServiceUnavailable when the broker is down."""
    with unavailable_as("broker", rt.settings.broker_url):
        publish(
            request,
            key,
            task_ids,
            priority=priority,
            on_done=on_done,
            deployment=rt.settings.key_prefix,
        )


def publish(
    request: SendRequest,
    key: str,
    task_ids: list[str],
    *,
    deployment: str,
    priority: Priority = DEFAULT_PRIORITY,
    on_done: str | None = None,
    countdown: float | None = None,
) -> None:
    """Publish the chain ``resolve_contact -> send_single`` with the given task ids.

    One message: the first task's, carrying the rest of the chain in Celery's ``chain`` option,
    exactly what ``celery.chain(...).apply_async()`` sends for two tasks; the worker publishes
    ``send_single`` when ``resolve_contact`` returns. Built directly, it skips the canvas's
    cloning and freezing: 0.16 ms less per enqueue (docs/benchmarks.md). Both steps go to the
    lane's queue, and so do their retries (Celery retries to the queue a task came from).

    The message carries what the send needs if its ledger record is lost (:class:`SendMeta`):
    the deployment it belongs to, its lane, its callback and when it was queued.
    ``deployment`` (the key prefix) has no default: a caller that forgot it would publish
    another deployment's lanes.
    """
    data = request.to_dict()
    queue = lane_queues(deployment)[priority]
    meta = SendMeta(deployment, priority, on_done, time.time()).to_dict()
    then = send_single.s(data, key, task_ids, meta=meta).set(task_id=task_ids[1], queue=queue)
    resolve_contact.apply_async(
        (data, key, task_ids),
        {"meta": meta},
        task_id=task_ids[0],
        queue=queue,
        chain=[then],
        countdown=countdown,
    )
