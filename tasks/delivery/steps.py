"""The two steps of a send, as plain functions: look the contact up, send the message.

Each returns one outcome (:mod:`tasks.delivery.outcomes`) that says how it ended, which the
Celery tasks in :mod:`tasks.worker.pipeline` map to a result, ``task.retry`` or a failure. The
failures of a step end through its one :class:`~tasks.delivery.failures.StepFailures`: Engage's
errors go through the retry policy, anything unforeseen (a bug) is retried a bounded number of
times, then dead-lettered ``internal_error``. A step raises only when Redis is unreachable.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from functools import partial
from typing import TypeVar

from tasks.core.errors import (
    EngageError,
    Rebuildable,
    UnknownRecipient,
)
from tasks.core.request import SendRequest, encoding_problem
from tasks.core.send_options import Priority
from tasks.delivery import metrics, policy
from tasks.delivery.context import StepContext
from tasks.delivery.events import attempt_answered, log_event
from tasks.delivery.failures import StepFailures, claim_from_message
from tasks.delivery.outcomes import (
    Busy,
    DeadLetter,
    LookupOutcome,
    Resolved,
    Retry,
    SendOutcome,
    Sent,
    Stopped,
    Unrecorded,
)
from tasks.delivery.runtime import Runtime
from tasks.state import REDIS_UNREACHABLE
from tasks.state.enums import FINAL_STATES, Reason, SendState, StartOutcome
from tasks.state.ledger import SendStart
from tasks.state.ledger import Sent as RecordedSent
from tasks.state.records import iso

#: The states in which a step finds nothing to do: the send was finished by an earlier
#: delivery (or is held for quiet hours: the sweep publishes it again).
SKIP_STATES = (*FINAL_STATES, SendState.DEFERRED)
#: After Engage accepted a send, how long a worker keeps trying to record it while Redis is away.
RECORD_SENT_PATIENCE = 120.0
#: A lease too few replicas acknowledged is tried again this much later (s): about a failover.
HOLD_BACK_DELAY = 2.0

__all__ = ["STEP_RAISES", "StepContext", "UnsentLease", "resolve", "send"]

logger = logging.getLogger("engage.delivery")
_T = TypeVar("_T")


def resolve(rt: Runtime, request: SendRequest, ctx: StepContext) -> LookupOutcome:
    """Look the contact up: :class:`Resolved` with its id, or how the step ended instead."""
    failures = StepFailures(rt, request, ctx)
    try:
        return _resolve(rt, request, ctx, failures)
    except REDIS_UNREACHABLE:
        raise  # the pipeline waits for Redis, then retries
    except Exception as err:
        return failures.unforeseen(err, stage="contact/get")


def _resolve(  # noqa: PLR0911  (each way the step ends reads best as an early return)
    rt: Runtime, request: SendRequest, ctx: StepContext, failures: StepFailures
) -> LookupOutcome:
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
        if state is None:
            return _record_missing(failures)
        deliveries = rt.ledger.count_delivery(ctx.key, attempt)
    if state in SKIP_STATES:
        return Stopped(state)
    if step.expired:
        return Stopped(policy.end(rt, request, ctx, SendState.EXPIRED))
    if deliveries > rt.settings.retry.max_redeliveries:
        return failures.dead_letter(Reason.WORKER_LOST, "the lookup killed its worker")
    if step.peeked[0] is not None:
        return failures.dead_letter(Reason.AUTH_FAILED, "Engage refused the credentials")
    rejected = _check_encodable(request, failures)
    if rejected is not None:
        return rejected
    if ident.type == "ID":
        return Resolved(int(ident.value))  # a known contact id needs no lookup
    contact_id = rt.contacts.decode(step.peeked[1]) if cache_key else None
    if contact_id is not None:
        rt.ledger.mark_resolved(ctx.key, contact_id)
        return Resolved(contact_id)
    waiting = _pace(rt, ctx.priority)
    if waiting is not None:
        return waiting
    found = _look_up(rt, request, ctx, failures)
    if isinstance(found, Resolved):
        attempt_answered(rt, ctx.key, "contact/get", 200)
        # Cached by the same script that records the lookup: one round trip for both.
        rt.ledger.mark_resolved(
            ctx.key, found.contact_id, cache=rt.contacts.entry(ident.type, ident.value)
        )
    return found


def _look_up(
    rt: Runtime, request: SendRequest, ctx: StepContext, failures: StepFailures
) -> LookupOutcome:
    """contact/get; an unknown contact is created when the send asked for it."""
    try:
        return Resolved(rt.engage.get_contact(request.identifier).contact_id)
    except EngageError as err:
        if not (isinstance(err, UnknownRecipient) and policy.wants_contact_created(rt, ctx.key)):
            return failures.engage_error(err, stage="resolve")
    try:
        return policy.create_contact(rt, request, ctx, lambda: _pace(rt, ctx.priority))
    except EngageError as err:
        return failures.engage_error(err, stage="create")


class UnsentLease(Rebuildable):
    """Redis failed after this delivery took (or may have taken) the send lease and before
    ``sendSingle`` was called: no request left, so the lease may be given back.

    Raised by :func:`send` from the Redis error (its ``__cause__``); the pipeline waits for Redis
    to take writes, gives back the lease named by ``token``
    (:meth:`~tasks.state.ledger.DeliveryLedger.release_unsent`), then retries.
    """

    _fields = ("key", "owner", "token")
    _plain = frozenset({"owner", "token"})

    def __init__(self, key: str, owner: str, token: str) -> None:
        self.key, self.owner, self.token = key, owner, token
        super().__init__(f"Redis failed before message/sendSingle of {key}: nothing sent")


#: What a step raises: Redis unreachable, bare or with a lease to give back.
STEP_RAISES: tuple[type[Exception], ...] = (*REDIS_UNREACHABLE, UnsentLease)


def send(rt: Runtime, request: SendRequest, contact_id: int, ctx: StepContext) -> SendOutcome:
    """Send once: :class:`Sent`, or how the step ended instead (:mod:`tasks.delivery.outcomes`).

    Once the request may have reached Engage, no outcome can lead to a second ``sendSingle``:
    Engage's own errors go through the retry policy, which never retries a send that may have
    acted; an unforeseen error dead-letters it; after a 204, any failure to record it is
    :class:`Unrecorded`.
    """
    failures = StepFailures(rt, request, ctx, contact_id=contact_id)
    try:
        return _send(rt, request, contact_id, ctx, failures)
    except STEP_RAISES:
        raise  # the pipeline waits for Redis, then retries
    except Exception as err:
        return failures.unforeseen(err, stage="message/sendSingle")


def _send(  # noqa: PLR0911  (each way the step ends reads best as an early return)
    rt: Runtime, request: SendRequest, contact_id: int, ctx: StepContext, failures: StepFailures
) -> SendOutcome:
    rejected = _check_encodable(request, failures)  # before the lease: nothing was sent
    if rejected is not None:
        return rejected
    not_before = policy.quiet_until(rt, request, ctx.priority)
    if not_before is not None:
        return Stopped(policy.defer(rt, request, ctx, not_before))
    # Before taking the lease, so waiting for a slot does not eat into it.
    waiting = _pace(rt, ctx.priority)
    if waiting is not None:
        return waiting
    # Names this taking of the lease: if Redis fails before the call, the pipeline gives back
    # this lease (and no later one) once Redis takes writes again, so the retry may send.
    token = uuid.uuid4().hex
    try:
        start = _lease(rt, request, contact_id, ctx, failures, token=token)
    except REDIS_UNREACHABLE as err:
        raise UnsentLease(ctx.key, ctx.owner, token) from err
    if not isinstance(start, SendStart):
        return start
    try:
        rt.engage.send_single(request.message_id, contact_id, request.parameters)
    except EngageError as err:
        if isinstance(err, UnknownRecipient):
            # The id may have come from the cache: the next send of this contact looks it up.
            rt.contacts.invalidate(request.identifier.type, request.identifier.value)
        # The lease is ours until this is recorded: a retry while it is held would find it
        # busy and leave the send to the sweep's outcome_unknown, though nothing may have left.
        return _through_outage(partial(failures.engage_error, err, stage="send"))
    except Exception as err:
        # The client failed in a way it does not sort (a bug, in building the request or in
        # reading the answer): the request may have left, so this is never retried blindly.
        return failures.unforeseen(err, stage="message/sendSingle", may_have_sent=True)
    return _after_send(rt, request, ctx, contact_id, start)


def _lease(  # noqa: PLR0911  (each way the step ends reads best as an early return)
    rt: Runtime,
    request: SendRequest,
    contact_id: int,
    ctx: StepContext,
    failures: StepFailures,
    *,
    token: str,
) -> SendStart | SendOutcome:
    """Take the lease and check the gate under it: the lease to send under, or how it ended.

    No request has left when this returns or raises: Redis failing here raises (see
    :class:`UnsentLease`).
    """
    resend = rt.settings.retry.on_unknown_outcome == "retry"

    def take_lease() -> SendStart:
        # The credentials flag is checked inside the same script that takes the lease.
        return rt.ledger.begin_send(
            ctx.key,
            ctx.owner,
            contact_id,
            resend_interrupted=resend,
            blocked_by=[rt.auth.key],
            lease_token=token,
        )

    start = take_lease()
    if start.outcome == StartOutcome.MISSING:
        if _recreate_record(rt, request, ctx) is None:
            return _record_missing(failures)
        start = take_lease()
    if start.outcome == StartOutcome.BLOCKED:
        return failures.dead_letter(Reason.AUTH_FAILED, "Engage refused the credentials")
    if start.outcome == StartOutcome.INTERRUPTED:
        return failures.interrupted(
            f"a worker stopped during message/sendSingle (its lease ran out at "
            f"{iso(start.lapsed_at)}); Engage may have sent it",
        )
    if start.outcome == StartOutcome.EXPIRED:
        return Stopped(policy.end(rt, request, ctx, SendState.EXPIRED))
    if start.outcome == StartOutcome.BUSY:
        return Busy()
    if start.outcome != StartOutcome.ACQUIRED:
        return Stopped(SendState(start.outcome))  # final or deferred by an earlier delivery
    if not start.held:
        return _hold_back(rt, ctx, start, failures)
    stopped = _policy_stop(rt, request, ctx)  # opted out meanwhile, or over the cap
    if stopped is not None:
        return stopped
    return start


def _after_send(
    rt: Runtime, request: SendRequest, ctx: StepContext, contact_id: int, start: SendStart
) -> Sent | Unrecorded:
    """Engage accepted the send: record it (:class:`Sent`), or leave it to the sweep."""
    sent = _record_sent(rt, request, ctx)
    attempt_answered(rt, ctx.key, "message/sendSingle", 204)
    if sent is None:
        return Unrecorded()
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
    return Sent(sent.callback)


def _policy_stop(rt: Runtime, request: SendRequest, ctx: StepContext) -> Busy | Stopped | None:
    """Under the lease: the opt-out list and the cap; how the send ended, or None to send it."""
    try:
        stop = policy.check_gate(rt, request, ctx)
    except policy.LeaseLost:
        return Busy()
    if stop is None:
        return None
    return Stopped(policy.end(rt, request, ctx, stop, owner=ctx.owner))


def _hold_back(rt: Runtime, ctx: StepContext, start: SendStart, failures: StepFailures) -> Retry:
    """The lease is not on enough replicas: a failover could lose it and let a copy send again.

    Engage is not called; the lease is given back and the step tried again a little later
    (a failover takes a few seconds). Not a failed call: no retry budget is spent.
    """
    why = rt.ledger.barrier.describe(start.acks)
    delay = min(HOLD_BACK_DELAY, rt.settings.retry.max_delay)
    return failures.retry(delay, f"held back: {why}", event="held_back", detail=why)


def _check_encodable(request: SendRequest, failures: StepFailures) -> DeadLetter | Stopped | None:
    """Dead-letter a request no transport can carry (queued before enqueue checked it)."""
    problem = encoding_problem(request)
    if problem is None:
        return None
    return failures.dead_letter(Reason.REJECTED, f"not sent: {problem}")


def _record_sent(rt: Runtime, request: SendRequest, ctx: StepContext) -> RecordedSent | None:
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


def _recreate_record(rt: Runtime, request: SendRequest, ctx: StepContext) -> SendState | None:
    """The record was found gone: recreate it from the message when that is safe; the state
    it is in then, or None when it cannot be told lost from expired (see :func:`_record_missing`).

    Safe when the message says it is this deployment's (checked by the task) and was queued less
    than the record retention ago: its record cannot have expired after a send, so it was lost
    (a Redis restart without persistence, a hand purge) and the send never happened as far as
    anything can tell. Otherwise (a message of an older version, or one older than the
    retention) the send is not made blindly. A claim leaves an existing record as it is, so one
    another delivery recreated is kept.
    """
    state = claim_from_message(rt, request, ctx)
    meta = ctx.meta
    unsafe = meta is None or time.time() - meta.queued_at > rt.settings.key_retention
    if unsafe and state in (SendState.QUEUED, SendState.RETRYING):
        return None
    return state


def _record_missing(failures: StepFailures) -> DeadLetter | Stopped:
    """Dead-letter ``record_missing`` a send whose record was lost or expired: replay it to send."""
    logger.warning("send %s found no ledger record and cannot tell why: not sent", failures.ctx.key)
    return failures.dead_letter(
        Reason.RECORD_MISSING,
        "its ledger record was missing and the message cannot tell lost from expired: "
        "not sent blindly; replay it to send",
    )


def _pace(rt: Runtime, lane: Priority) -> Retry | None:
    """Wait for a slot of the global Engage rate limit (None), or hand the task back to Celery.

    Urgent books any slot within ``ENGAGE_RATE_MAX_WAIT``; normal and bulk wait (up to as long)
    for a slot a higher lane leaves them (:mod:`tasks.state.rate_limit`).
    """
    if not rt.rate_limiter.acquire(rt.settings.rate_max_wait, lane):
        # Come back about when a slot frees; never later than a normal retry (visibility timeout).
        hint = rt.rate_limiter.wait_hint() - rt.settings.rate_max_wait / 2
        return Retry(min(max(hint, 0.1), rt.settings.retry.max_delay))
    return None
