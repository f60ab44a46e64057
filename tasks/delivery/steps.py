"""The two steps of a send, as plain functions: look the contact up, send the message.

The Celery tasks in :mod:`tasks.worker.pipeline` are thin wrappers: they turn
:class:`RetryLater` into ``task.retry`` and let :class:`DeadLettered` fail the task so Flower
shows it. Whatever a step raises ends in a known state (:mod:`tasks.delivery.failures`):
Engage's errors go through the retry policy, anything unforeseen through
:func:`internal_failure` (bounded retries, then the dead-letter reason ``internal_error``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import partial
from typing import TypeVar

from tasks.delivery import metrics, policy
from tasks.delivery.context import RetryLater, StepContext
from tasks.delivery.events import attempt_answered, log_event
from tasks.delivery.failures import (
    claim_from_message,
    dead_letter,
    error_of,
    failed,
    internal_failure,
    log_internal,
)
from tasks.delivery.runtime import Runtime
from tasks.errors import (
    EngageError,
    UnknownRecipient,
)
from tasks.request import SendRequest, encoding_problem
from tasks.send_options import Priority
from tasks.state import REDIS_UNREACHABLE
from tasks.state.enums import FINAL_STATES, Reason, SendState, StartOutcome
from tasks.state.ledger import SendStart, Sent
from tasks.state.records import iso

#: What a step returns when the send was already finished by an earlier delivery (or is held
#: for quiet hours: the sweep publishes it again).
SKIP_STATES = (*FINAL_STATES, SendState.DEFERRED)
#: After Engage accepted a send, how long a worker keeps trying to record it while Redis is away.
RECORD_SENT_PATIENCE = 120.0
#: What :func:`send` returns when Engage accepted the send but the ledger could not record it:
#: the lease lapses and the sweep dead-letters it ``outcome_unknown``; nothing sends it again.
UNRECORDED = "unrecorded"
#: A lease too few replicas acknowledged is tried again this much later (s): about a failover.
HOLD_BACK_DELAY = 2.0

__all__ = ["RetryLater", "StepContext", "internal_failure", "resolve", "send"]

logger = logging.getLogger("engage.delivery")
_T = TypeVar("_T")


def resolve(rt: Runtime, request: SendRequest, ctx: StepContext) -> int | str:
    """The contact id to send to, or the final state when an earlier delivery finished the send."""
    ident = request.identifier
    cache_key = None if ident.type == "ID" else rt.contacts.lookup_key(ident.type, ident.value)
    attempt = f"{ctx.owner}:resolve"
    # One round trip: the state, this delivery counted, the credentials flag, the cached id.
    step = rt.ledger.begin_step(
        ctx.key, attempt, peek=[rt.auth.key] + ([cache_key] if cache_key else [])
    )
    state, deliveries = step.state, step.deliveries
    if state is None:
        state = _recreate_record(rt, request, ctx)
        deliveries = rt.ledger.count_delivery(ctx.key, attempt)
    if state in SKIP_STATES:
        return state
    if step.expired:
        return policy.end(rt, request, ctx, SendState.EXPIRED)
    if deliveries > rt.settings.retry.max_redeliveries:
        raise dead_letter(
            rt, request, ctx, Reason.WORKER_LOST, None, "the lookup killed its worker"
        )
    if step.peeked[0] is not None:
        raise dead_letter(
            rt, request, ctx, Reason.AUTH_FAILED, None, "Engage refused the credentials"
        )
    _check_encodable(rt, request, ctx)
    if ident.type == "ID":
        return int(ident.value)  # a known contact id needs no lookup
    contact_id = rt.contacts.decode(step.peeked[1]) if cache_key else None
    if contact_id is None:
        _pace(rt, ctx.priority)
        contact_id = _look_up(rt, request, ctx)
        attempt_answered(rt, ctx.key, "contact/get", 200)
        # Cached by the same script that records the lookup: one round trip for both.
        rt.ledger.mark_resolved(
            ctx.key, contact_id, cache=rt.contacts.entry(ident.type, ident.value)
        )
        return contact_id
    rt.ledger.mark_resolved(ctx.key, contact_id)
    return contact_id


def _look_up(rt: Runtime, request: SendRequest, ctx: StepContext) -> int:
    """contact/get; an unknown contact is created when the send asked for it."""
    try:
        return rt.engage.get_contact(request.identifier).contact_id
    except EngageError as err:
        if not (isinstance(err, UnknownRecipient) and policy.wants_contact_created(rt, ctx.key)):
            failure, masked = failed(rt, request, ctx, err, stage="resolve")
            raise failure from masked
    try:
        return policy.create_contact(rt, request, ctx, lambda: _pace(rt, ctx.priority))
    except EngageError as err:
        failure, masked = failed(rt, request, ctx, err, stage="create")
        raise failure from masked


def send(rt: Runtime, request: SendRequest, contact_id: int, ctx: StepContext) -> str:
    """Send once; returns ``sent``, or why nothing was done (``dead_lettered``, ``in_progress``,
    or the sending policy's ``deferred``, ``expired``, ``capped``, ``suppressed``).

    Once the request may have reached Engage, nothing this function raises can lead to a second
    ``sendSingle``: Engage's own errors go through the retry policy, which never retries a send
    that may have acted; after a 204, any failure to record it returns :data:`UNRECORDED`.
    """
    _check_encodable(rt, request, ctx)  # before the lease: a failure here sent nothing
    not_before = policy.quiet_until(rt, request, ctx.priority)
    if not_before is not None:
        return policy.defer(rt, request, ctx, not_before)
    _pace(rt, ctx.priority)  # before taking the lease, so waiting for a slot does not eat into it
    resend = rt.settings.retry.on_unknown_outcome == "retry"

    def take_lease() -> SendStart:
        # The credentials flag is checked inside the same script that takes the lease.
        return rt.ledger.begin_send(
            ctx.key, ctx.owner, contact_id, resend_interrupted=resend, blocked_by=[rt.auth.key]
        )

    start = take_lease()
    if start.outcome == StartOutcome.MISSING:
        _recreate_record(rt, request, ctx)
        start = take_lease()
    if start.outcome == StartOutcome.BLOCKED:
        raise dead_letter(
            rt, request, ctx, Reason.AUTH_FAILED, None, "Engage refused the credentials"
        )
    if start.outcome == StartOutcome.INTERRUPTED:
        raise dead_letter(
            rt,
            request,
            ctx,
            Reason.OUTCOME_UNKNOWN,
            None,
            f"a worker stopped during message/sendSingle (its lease ran out at "
            f"{iso(start.lapsed_at)}); Engage may have sent it",
        )
    if start.outcome == StartOutcome.EXPIRED:
        return policy.end(rt, request, ctx, SendState.EXPIRED)
    if start.outcome != StartOutcome.ACQUIRED:
        # Final or deferred by an earlier delivery, or another delivery holds the lease.
        return "in_progress" if start.outcome == StartOutcome.BUSY else start.outcome
    if not start.held:
        raise _hold_back(rt, request, ctx, start)
    stopped = _policy_stop(rt, request, ctx)  # opted out meanwhile, or over the cap
    if stopped is not None:
        return stopped
    try:
        rt.engage.send_single(request.message_id, contact_id, request.parameters)
    except EngageError as err:
        if isinstance(err, UnknownRecipient):
            # The id may have come from the cache: the next send of this contact looks it up.
            rt.contacts.invalidate(request.identifier.type, request.identifier.value)
        # The lease is ours until this is recorded: a retry while it is held would find it
        # busy and leave the send to the sweep's outcome_unknown, though nothing may have left.
        failure, masked = _through_outage(
            partial(failed, rt, request, ctx, err, stage="send", contact_id=contact_id)
        )
        raise failure from masked
    except Exception as err:
        # The client failed in a way it does not sort (a bug, in building the request or in
        # reading the answer): the request may have left, so this is never retried blindly.
        # Not chained: the error's text is not known to be masked; the log has it, masked.
        log_internal(err, request, "message/sendSingle")
        raise dead_letter(
            rt,
            request,
            ctx,
            Reason.INTERNAL_ERROR,
            None,
            f"{type(err).__name__} during message/sendSingle; Engage may have sent it",
            error=error_of(err, request),
        ) from None
    return _after_send(rt, request, ctx, contact_id, start)


def _after_send(
    rt: Runtime, request: SendRequest, ctx: StepContext, contact_id: int, start: SendStart
) -> str:
    """Engage accepted the send: record it (``sent``), or leave it to the sweep (UNRECORDED)."""
    sent = _record_sent(rt, request, ctx)
    attempt_answered(rt, ctx.key, "message/sendSingle", 204)
    if sent is None:
        return UNRECORDED
    ctx.sent_now.append(sent.callback)
    if sent.waited is not None:
        metrics.observe_sent(sent.priority, sent.waited)
    log_event(
        "sent",
        key=ctx.key,
        task_id=ctx.task_id,
        recipient=request.identifier.masked(),
        message_id=request.message_id,
        contact_id=contact_id,
        attempts=start.attempts,
        priority=sent.priority,
        queued_for=None if sent.waited is None else round(sent.waited, 3),
    )
    return "sent"


def _policy_stop(rt: Runtime, request: SendRequest, ctx: StepContext) -> str | None:
    """Under the lease: the opt-out list and the cap; how the send ended, or None to send it."""
    try:
        stop = policy.check_gate(rt, request, ctx)
    except policy.LeaseLost:
        return "in_progress"
    return None if stop is None else policy.end(rt, request, ctx, stop, owner=ctx.owner)


def _hold_back(rt: Runtime, request: SendRequest, ctx: StepContext, start: SendStart) -> RetryLater:
    """The lease is not on enough replicas: a failover could lose it and let a copy send again.

    Engage is not called; the lease is given back and the step tried again a little later
    (a failover takes a few seconds). Not a failed call: no retry budget is spent.
    """
    why = rt.ledger.barrier.describe(start.acks)
    delay = min(HOLD_BACK_DELAY, rt.settings.retry.max_delay)
    rt.ledger.mark_retrying(ctx.key, ctx.owner, f"held back: {why}", delay)
    log_event(
        "held_back",
        key=ctx.key,
        task_id=ctx.task_id,
        recipient=request.identifier.masked(),
        retry_in=delay,
        detail=why,
    )
    return RetryLater(delay, None)


def _check_encodable(rt: Runtime, request: SendRequest, ctx: StepContext) -> None:
    """Dead-letter a request no transport can carry (queued before enqueue checked it)."""
    problem = encoding_problem(request)
    if problem is not None:
        raise dead_letter(rt, request, ctx, Reason.REJECTED, None, f"not sent: {problem}")


def _record_sent(rt: Runtime, request: SendRequest, ctx: StepContext) -> Sent | None:
    """Record what Engage accepted, riding out a Redis outage (READONLY, LOADING, ...) for up to
    :data:`RECORD_SENT_PATIENCE`; None when it could not be recorded.

    A record lost meanwhile (a Redis restart without persistence) is written again in full from
    the message, then marked sent: never a record holding only ``sent``, and its callback kept.

    Never raises: an exception here would reach the task's error handling, which assumes nothing
    was sent and retries, i.e. sends again. Unrecorded, the lease lapses and the sweep
    dead-letters the send ``outcome_unknown``, which a replay must be asked for by name.
    """
    key = ctx.key
    deadline = time.monotonic() + RECORD_SENT_PATIENCE
    delay = 0.5
    while True:
        try:
            sent = rt.ledger.mark_sent(key)
            if sent is None:
                claim_from_message(rt, request, ctx)
                sent = rt.ledger.mark_sent(key)
            if sent is not None:
                return sent
        except REDIS_UNREACHABLE as err:
            if delay == 0.5:  # once per send
                logger.warning(
                    "recording send %s as sent: Redis unavailable (%s); trying again",
                    key,
                    type(err).__name__,
                )
            if time.monotonic() >= deadline:
                logger.critical(
                    "send %s was accepted by Engage but could not be recorded (%s): the sweep "
                    "will dead-letter it outcome_unknown",
                    key,
                    type(err).__name__,
                )
                return None
        except Exception:  # a bug: the SMS is out, so this must not look like a failed send
            logger.critical(
                "send %s was accepted by Engage but recording it failed: the sweep will "
                "dead-letter it outcome_unknown",
                key,
                exc_info=True,
            )
            return None
        else:
            if time.monotonic() >= deadline:
                # The record was lost again and again: leave it to the sweep, never resend.
                logger.critical(
                    "send %s was accepted by Engage but its record could not be written: the "
                    "sweep will dead-letter it outcome_unknown",
                    key,
                )
                return None
        time.sleep(delay)
        delay = min(delay * 2, 5.0)


def _through_outage(record: Callable[[], _T]) -> _T:
    """Run ``record`` (a ledger write after the call), waiting out "Redis unavailable" for up to
    :data:`RECORD_SENT_PATIENCE`; then its error goes up (the step's own wait-and-retry)."""
    deadline = time.monotonic() + RECORD_SENT_PATIENCE
    delay = 0.5
    while True:
        try:
            return record()
        except REDIS_UNREACHABLE:
            if time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def _recreate_record(rt: Runtime, request: SendRequest, ctx: StepContext) -> SendState:
    """The record was found gone: recreate it from the message when that is safe, else stop.

    Safe when the message says it is this deployment's (checked by the task) and was queued less
    than the record retention ago: its record cannot have expired after a send, so it was lost
    (a Redis restart without persistence, a hand purge) and the send never happened as far as
    anything can tell. Otherwise (a message of an older version, or one older than the
    retention) the send is not made blindly: it is dead-lettered ``record_missing``, to replay.
    A claim leaves an existing record as it is, so one another delivery recreated is kept.
    """
    state = claim_from_message(rt, request, ctx)
    meta = ctx.meta
    if meta is None or time.time() - meta.queued_at > rt.settings.key_retention:
        if state not in (SendState.QUEUED, SendState.RETRYING):
            return state
        logger.warning("send %s found no ledger record and cannot tell why: not sent", ctx.key)
        raise dead_letter(
            rt,
            request,
            ctx,
            Reason.RECORD_MISSING,
            None,
            "its ledger record was missing and the message cannot tell lost from expired: "
            "not sent blindly; replay it to send",
        )
    return state


def _pace(rt: Runtime, lane: Priority) -> None:
    """Wait for a slot of the global Engage rate limit, or hand the task back to Celery.

    Urgent books any slot within ``ENGAGE_RATE_MAX_WAIT``; normal and bulk wait (up to as long)
    for a slot a higher lane leaves them (:mod:`tasks.state.rate_limit`).
    """
    if not rt.rate_limiter.acquire(rt.settings.rate_max_wait, lane):
        # Come back about when a slot frees; never later than a normal retry (visibility timeout).
        hint = rt.rate_limiter.wait_hint() - rt.settings.rate_max_wait / 2
        raise RetryLater(min(max(hint, 0.1), rt.settings.retry.max_delay), None)
