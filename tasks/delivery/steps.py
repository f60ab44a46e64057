"""The two steps of a send, as plain functions: look the contact up, send the message.

The Celery tasks in :mod:`tasks.worker.pipeline` are thin wrappers: they turn
:class:`RetryLater` into ``task.retry`` and let :class:`DeadLettered` fail the task so Flower
shows it. Whatever a step raises ends in a known state: Engage's errors go through the retry
policy, anything unforeseen through :func:`internal_failure` (bounded retries, then the
dead-letter reason ``internal_error``).

Engage's answers may echo the recipient or a parameter value. Each error is masked once, here,
by the request's private values and by pattern (:class:`~tasks.masking.Masker`): the ledger, the
dead-letter store, the log and the exceptions handed to Celery (which logs them and sends them to
Flower, chain included) only ever hold the masked copy.
"""

from __future__ import annotations

import logging
import time
import traceback
from dataclasses import dataclass, field

import redis

from tasks.delivery import metrics
from tasks.delivery.events import log_event
from tasks.delivery.retry_policy import Attempt, decide
from tasks.delivery.runtime import Runtime
from tasks.errors import (
    CredentialsRejected,
    DeadLettered,
    EngageAPIError,
    EngageError,
    UnknownRecipient,
)
from tasks.masking import Masker
from tasks.request import SendRequest, encoding_problem
from tasks.send_options import DEFAULT_PRIORITY, Priority
from tasks.state.enums import Reason, SendState, StartOutcome
from tasks.state.ledger import SendStart, Sent

#: What a step returns when the send was already finished by an earlier delivery.
SKIP_STATES = (SendState.SENT, SendState.DEAD_LETTERED)
#: After Engage accepted a send, how long a worker keeps trying to record it while Redis is away.
RECORD_SENT_PATIENCE = 120.0

logger = logging.getLogger("engage.delivery")


class RetryLater(Exception):
    """Try this step again in ``delay`` seconds (after ``error``, or waiting for a rate slot)."""

    def __init__(self, delay: float, error: EngageError | None) -> None:
        self.delay = delay
        self.error = error
        super().__init__(f"retry in {delay:.1f} s after {error or 'waiting for a rate slot'}")


@dataclass(frozen=True)
class StepContext:
    """Which send this is and which delivery of which task is running it."""

    key: str
    task_id: str
    retries: int
    task_ids: list[str]
    #: The lane the task was delivered from: how it waits for a rate-limit slot.
    priority: Priority = DEFAULT_PRIORITY
    #: Filled by :func:`send` when this delivery recorded ``sent`` itself: the completion
    #: callback that made due, or None (the task publishes it; nothing else to look up).
    sent_now: list[str | None] = field(default_factory=list, compare=False, repr=False)

    @property
    def owner(self) -> str:
        """Names this delivery attempt: the same value on a redelivery of the same attempt."""
        return f"{self.task_id}:{self.retries}"


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
    if deliveries > rt.settings.retry.max_redeliveries:
        raise _dead_letter(
            rt, request, ctx, Reason.WORKER_LOST, None, "the lookup killed its worker"
        )
    if step.peeked[0] is not None:
        raise _dead_letter(
            rt, request, ctx, Reason.AUTH_FAILED, None, "Engage refused the credentials"
        )
    _check_encodable(rt, request, ctx)
    if ident.type == "ID":
        return int(ident.value)  # a known contact id needs no lookup
    contact_id = rt.contacts.decode(step.peeked[1]) if cache_key else None
    if contact_id is None:
        _pace(rt, ctx.priority)
        try:
            contact_id = rt.engage.get_contact(ident).contact_id
        except EngageError as err:
            failure, masked = _failed(rt, request, ctx, err, stage="resolve")
            raise failure from masked
        # Cached by the same script that records the lookup: one round trip for both.
        rt.ledger.mark_resolved(
            ctx.key, contact_id, cache=rt.contacts.entry(ident.type, ident.value)
        )
        return contact_id
    rt.ledger.mark_resolved(ctx.key, contact_id)
    return contact_id


def send(rt: Runtime, request: SendRequest, contact_id: int, ctx: StepContext) -> str:
    """Send once; returns ``sent``, or why nothing was done (``dead_lettered``, ``in_progress``)."""
    _check_encodable(rt, request, ctx)  # before the lease: a failure here sent nothing
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
        raise _dead_letter(
            rt, request, ctx, Reason.AUTH_FAILED, None, "Engage refused the credentials"
        )
    if start.outcome == StartOutcome.INTERRUPTED:
        raise _dead_letter(
            rt,
            request,
            ctx,
            Reason.OUTCOME_UNKNOWN,
            None,
            "a worker stopped during message/sendSingle; Engage may have sent it",
        )
    if start.outcome != StartOutcome.ACQUIRED:
        # sent or dead-lettered by an earlier delivery, or another delivery holds the lease.
        return "in_progress" if start.outcome == StartOutcome.BUSY else start.outcome
    try:
        rt.engage.send_single(request.message_id, contact_id, request.parameters)
    except EngageError as err:
        if isinstance(err, UnknownRecipient):
            # The id may have come from the cache: the next send of this contact looks it up.
            rt.contacts.invalidate(request.identifier.type, request.identifier.value)
        failure, masked = _failed(rt, request, ctx, err, stage="send", contact_id=contact_id)
        raise failure from masked
    except Exception as err:
        # The client failed in a way it does not sort (a bug, in building the request or in
        # reading the answer): the request may have left, so this is never retried blindly.
        # Not chained: the error's text is not known to be masked; the log has it, masked.
        _log_internal(err, request, "message/sendSingle")
        raise _dead_letter(
            rt,
            request,
            ctx,
            Reason.INTERNAL_ERROR,
            None,
            f"{type(err).__name__} during message/sendSingle; Engage may have sent it",
            error=_error_of(err, request),
        ) from None
    sent = _record_sent(rt, ctx.key)
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


def internal_failure(
    rt: Runtime, request: SendRequest, ctx: StepContext, err: Exception, *, stage: str
) -> Exception:
    """A step raised something unforeseen before any Engage call could have sent the message.

    Retried like a transient failure (``ENGAGE_RETRY_MAX_ATTEMPTS`` times, growing delays), then
    dead-lettered ``internal_error`` with the exception type in the entry and the traceback,
    masked, in the log. Returns the exception for the task to raise ``from None``: ``err``'s
    text is not known to be masked, and the log has it.
    """
    _log_internal(err, request, stage)
    failures = rt.ledger.count_failure(ctx.key, f"{stage}:internal")
    policy = rt.settings.retry
    if failures <= policy.max_attempts:
        delay = min(policy.base_delay + policy.backoff * (failures - 1), policy.max_delay)
        rt.ledger.mark_retrying(ctx.key, ctx.owner, f"{type(err).__name__} in {stage}", delay)
        log_event(
            "retrying",
            key=ctx.key,
            task_id=ctx.task_id,
            recipient=request.identifier.masked(),
            retry_in=round(delay, 3),
            error=type(err).__name__,
            operation=stage,
        )
        return RetryLater(delay, None)
    return _dead_letter(
        rt,
        request,
        ctx,
        Reason.INTERNAL_ERROR,
        None,
        f"{type(err).__name__} in {stage}, {failures} times; nothing was sent",
        error=_error_of(err, request),
    )


def _check_encodable(rt: Runtime, request: SendRequest, ctx: StepContext) -> None:
    """Dead-letter a request no transport can carry (queued before enqueue checked it)."""
    problem = encoding_problem(request)
    if problem is not None:
        raise _dead_letter(rt, request, ctx, Reason.REJECTED, None, f"not sent: {problem}")


def _record_sent(rt: Runtime, key: str) -> Sent:
    """Record what Engage accepted, riding out a short Redis outage rather than losing it."""
    deadline = time.monotonic() + RECORD_SENT_PATIENCE
    delay = 0.5
    while True:
        try:
            return rt.ledger.mark_sent(key)
        except (redis.ConnectionError, redis.TimeoutError):
            if time.monotonic() >= deadline:
                # The lease runs out and the sweep dead-letters it outcome_unknown: never resent.
                logger.critical("send %s was accepted by Engage but could not be recorded", key)
                raise
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def _error_of(err: Exception, request: SendRequest) -> dict[str, str]:
    """An unforeseen exception as a dead-letter entry shows it: type and masked message."""
    return {"type": type(err).__name__, "message": Masker(request.private_values())(str(err))}


def _log_internal(err: Exception, request: SendRequest, stage: str) -> None:
    lines = "".join(traceback.format_exception(type(err), err, err.__traceback__)).rstrip()
    logger.error("unexpected error in %s:\n%s", stage, Masker(request.private_values())(lines))


def _recreate_record(rt: Runtime, request: SendRequest, ctx: StepContext) -> SendState:
    """The record was found gone (purged by hand, or Redis lost it): recreate it before acting.

    A claim leaves an existing record as it is and reports its state, so a record that another
    delivery recreated meanwhile is kept.
    """
    return rt.ledger.claim(ctx.key, request, ctx.task_ids, priority=ctx.priority).state


def _pace(rt: Runtime, lane: Priority) -> None:
    """Wait for a slot of the global Engage rate limit, or hand the task back to Celery.

    Urgent books any slot within ``ENGAGE_RATE_MAX_WAIT``; normal and bulk wait (up to as long)
    for a slot a higher lane leaves them (:mod:`tasks.state.rate_limit`).
    """
    if not rt.rate_limiter.acquire(rt.settings.rate_max_wait, lane):
        # Come back about when a slot frees; never later than a normal retry (visibility timeout).
        hint = rt.rate_limiter.wait_hint() - rt.settings.rate_max_wait / 2
        raise RetryLater(min(max(hint, 0.1), rt.settings.retry.max_delay), None)


def _failed(
    rt: Runtime,
    request: SendRequest,
    ctx: StepContext,
    err: EngageError,
    *,
    stage: str,
    contact_id: int | None = None,
) -> tuple[Exception, EngageError]:
    """Retry or dead-letter after ``err``: the exception to raise, and ``err`` masked.

    The contact id stays readable (Engage's ids are not personal, and operators look them up).

    Raise the one ``from`` the other, never from ``err``: Celery logs the chain and Flower shows
    it, and only the masked copy may be in it (``from`` also hides ``err`` as the context).
    """
    if isinstance(err, CredentialsRejected):
        rt.auth.trip()
    failures = rt.ledger.count_failure(ctx.key, stage)
    # The time budget runs from the first failure: time spent waiting in a queue is no failure.
    first = float(rt.ledger.record(ctx.key).get("first_failure_at", time.time()))
    attempt = Attempt(retries=failures - 1, elapsed=time.time() - first, sending=stage == "send")
    decision = decide(err, attempt, rt.settings.retry)
    readable = () if contact_id is None else (str(contact_id),)
    # From here on, only the masked copy.
    shown = err.masked(Masker(request.private_values(), readable=readable))
    outcome: Exception
    if decision.retry_in is not None:
        rt.ledger.mark_retrying(ctx.key, ctx.owner, str(shown), decision.retry_in)
        log_event(
            "retrying",
            key=ctx.key,
            task_id=ctx.task_id,
            recipient=request.identifier.masked(),
            retry_in=round(decision.retry_in, 3),
            **_error_fields(shown),
        )
        outcome = RetryLater(decision.retry_in, shown)
    else:
        reason = decision.reason or Reason.RETRIES_EXHAUSTED
        outcome = _dead_letter(rt, request, ctx, reason, shown, str(shown))
    return outcome, shown


def _dead_letter(  # noqa: PLR0917  (internal helper, called with all six every time)
    rt: Runtime,
    request: SendRequest,
    ctx: StepContext,
    reason: Reason,
    err: EngageError | None,
    detail: str,
    *,
    error: dict[str, str] | None = None,
) -> DeadLettered:
    if isinstance(err, EngageAPIError):
        error = err.to_dict()
    elif err is not None:
        error = {"type": type(err).__name__, "message": str(err)}
    if not rt.dead_letters.add(
        ctx.key, reason=reason, detail=detail, error=error, task_ids=ctx.task_ids
    ):
        # Sent meanwhile by another delivery: nothing to dead-letter, nothing to raise.
        return DeadLettered(ctx.key, "already_sent", "the send had already succeeded")
    log_event(
        "dead_lettered",
        key=ctx.key,
        task_id=ctx.task_id,
        recipient=request.identifier.masked(),
        reason=reason,
        detail=detail,
        **(_error_fields(err) if err else {}),
    )
    return DeadLettered(ctx.key, reason, detail)


def _error_fields(err: EngageError) -> dict[str, object]:
    if isinstance(err, EngageAPIError):
        return {"status": err.status, "error_code": err.error_code, "operation": err.operation}
    return {"error": type(err).__name__, "operation": err.operation}
