"""How a step that failed ends: a retry, or a dead letter, with only masked text kept.

Engage's answers may echo the recipient or a parameter value. Each error is masked once, here,
by the request's private values and by pattern (:class:`~tasks.masking.Masker`): the ledger, the
dead-letter store, the log and the exceptions handed to Celery (which logs them and sends them to
Flower, chain included) only ever hold the masked copy.
"""

from __future__ import annotations

import logging
import traceback

from tasks.delivery.context import RetryLater, StepContext
from tasks.delivery.events import attempt_failed, log_event
from tasks.delivery.retry_policy import Attempt, decide
from tasks.delivery.runtime import Runtime
from tasks.errors import CredentialsRejected, DeadLettered, EngageAPIError, EngageError
from tasks.masking import Masker
from tasks.request import SendRequest
from tasks.state.enums import Reason, SendState

logger = logging.getLogger("engage.delivery")


def internal_failure(
    rt: Runtime, request: SendRequest, ctx: StepContext, err: Exception, *, stage: str
) -> Exception:
    """A step raised something unforeseen before any Engage call could have sent the message.

    Retried like a transient failure (``ENGAGE_RETRY_MAX_ATTEMPTS`` times, growing delays), then
    dead-lettered ``internal_error`` with the exception type in the entry and the traceback,
    masked, in the log. Returns the exception for the task to raise ``from None``: ``err``'s
    text is not known to be masked, and the log has it.
    """
    log_internal(err, request, stage)
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
    return dead_letter(
        rt,
        request,
        ctx,
        Reason.INTERNAL_ERROR,
        None,
        f"{type(err).__name__} in {stage}, {failures} times; nothing was sent",
        error=error_of(err, request),
    )


def failed(
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
    record = rt.ledger.record(ctx.key)
    # The time budget runs from the first failure: time spent waiting in a queue is no failure.
    # Both ends on the Redis clock: the first failure may have been another worker's.
    now = rt.ledger.now()
    first = float(record.get("first_failure_at", now))
    attempt = Attempt(retries=failures - 1, elapsed=now - first, sending=stage == "send")
    decision = decide(err, attempt, rt.settings.retry)
    readable = () if contact_id is None else (str(contact_id),)
    # From here on, only the masked copy.
    shown = err.masked(Masker(request.private_values(), readable=readable))
    outcome: Exception
    if decision.retry_in is not None:
        retry_in = _within_deadline(decision.retry_in, record, now)
        rt.ledger.mark_retrying(ctx.key, ctx.owner, str(shown), retry_in)
        log_event(
            "retrying",
            key=ctx.key,
            task_id=ctx.task_id,
            recipient=request.identifier.masked(),
            retry_in=round(retry_in, 3),
            **_error_fields(shown),
        )
        outcome = RetryLater(retry_in, shown)
    else:
        reason = decision.reason or Reason.RETRIES_EXHAUSTED
        outcome = dead_letter(rt, request, ctx, reason, shown, str(shown))
    attempt_failed(rt, ctx.key, shown, decision)
    return outcome, shown


#: A retry due after the send's deadline comes this long after the deadline instead, and ends
#: the send ``expired`` (the margin covers clocks a little apart from Redis's).
DEADLINE_SLACK = 0.5


def _within_deadline(delay: float, record: dict[str, str], now: float) -> float:
    """``delay``, or less: never wait past the send's deadline to find out it expired.

    ``now`` is the Redis clock's, as the deadline is.
    """
    if "expires_at" not in record:
        return delay
    remaining = float(record["expires_at"]) - now
    return min(delay, max(remaining, 0.0) + DEADLINE_SLACK)


def dead_letter(  # noqa: PLR0917  (called with all six every time)
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
    added = rt.dead_letters.add(
        ctx.key, reason=reason, detail=detail, error=error, task_ids=ctx.task_ids
    )
    if added is None:
        # The record was lost under this step: write it in full, so the entry can be replayed.
        claim_from_message(rt, request, ctx)
        added = rt.dead_letters.add(
            ctx.key, reason=reason, detail=detail, error=error, task_ids=ctx.task_ids
        )
    if not added:
        # Sent (or cancelled) meanwhile: nothing to dead-letter, nothing to raise.
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


def error_of(err: Exception, request: SendRequest) -> dict[str, str]:
    """An unforeseen exception as a dead-letter entry shows it: type and masked message."""
    return {"type": type(err).__name__, "message": Masker(request.private_values())(str(err))}


def log_internal(err: Exception, request: SendRequest, stage: str) -> None:
    """Log an unforeseen exception with its traceback, masked by the request's values."""
    lines = "".join(traceback.format_exception(type(err), err, err.__traceback__)).rstrip()
    logger.error("unexpected error in %s:\n%s", stage, Masker(request.private_values())(lines))


def claim_from_message(rt: Runtime, request: SendRequest, ctx: StepContext) -> SendState:
    """Write the record a step found missing, in full, with the lane and callback the message
    carries; an existing record is left as it is (returns its state)."""
    meta = ctx.meta
    return rt.ledger.claim(
        ctx.key,
        request,
        ctx.task_ids,
        priority=ctx.priority if meta is None else meta.lane,
        on_done=None if meta is None else meta.on_done,
    ).state
