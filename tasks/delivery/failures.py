"""How a step that failed ends: a retry, or a dead letter, with only masked text kept.

Engage's answers may echo the recipient or a parameter value, and an unforeseen exception's
text is not known to be clean. A step builds one :class:`StepFailures` and with it one
:class:`~tasks.core.masking.Masker` (its request's private values, by value and by pattern); every
failure of the step is masked by it once, and the ledger, the dead-letter store, the log and the
outcome handed to the pipeline (which Celery logs and sends to Flower) only hold the masked copy.
"""

from __future__ import annotations

import logging
import traceback
from functools import cached_property
from typing import Any

from tasks.core.errors import CredentialsRejected, EngageAPIError, EngageError
from tasks.core.masking import Masker
from tasks.core.request import SendRequest
from tasks.delivery.context import StepContext
from tasks.delivery.events import attempt_failed, log_event
from tasks.delivery.outcomes import Busy, DeadLetter, Retry, Stopped
from tasks.delivery.retry_policy import Attempt, decide
from tasks.delivery.runtime import Runtime
from tasks.state.enums import Reason, SendState

logger = logging.getLogger("engage.delivery")

#: A retry due after the send's deadline comes this long after the deadline instead, and ends
#: the send ``expired`` (the margin covers clocks a little apart from Redis's).
DEADLINE_SLACK = 0.5


class StepFailures:
    """How the failures of one step of one send end; masks with one :class:`Masker`.

    ``contact_id`` (the send step's) stays readable in what is kept: Engage's ids are not
    personal, and operators look them up.
    """

    def __init__(
        self,
        rt: Runtime,
        request: SendRequest,
        ctx: StepContext,
        *,
        contact_id: int | None = None,
    ) -> None:
        self.rt = rt
        self.request = request
        self.ctx = ctx
        self.contact_id = contact_id

    @cached_property
    def masker(self) -> Masker:
        """The step's one masker, built at its first failure (a send that succeeds needs none)."""
        readable = () if self.contact_id is None else (str(self.contact_id),)
        return Masker(self.request.private_values(), readable=readable)

    @cached_property
    def recipient(self) -> str:
        """The recipient as the log shows it, masked."""
        return self.request.identifier.masked()

    def engage_error(self, err: EngageError, *, stage: str) -> Retry | DeadLetter | Stopped:
        """Engage answered ``err``: retried as the retry policy says, or dead-lettered.

        The outcome carries ``err`` masked, never ``err``: Celery logs what the pipeline
        raises, chain included, and Flower shows it.
        """
        rt, ctx = self.rt, self.ctx
        if isinstance(err, CredentialsRejected):
            rt.auth.trip()
        failures = rt.ledger.count_failure(ctx.key, stage)
        record = rt.ledger.record(ctx.key)
        # The time budget runs from the first failure: time spent waiting in a queue is no
        # failure. Both ends on the Redis clock: the first failure may have been another worker's.
        now = rt.ledger.now()
        first = float(record.get("first_failure_at", now))
        attempt = Attempt(retries=failures - 1, elapsed=now - first, sending=stage == "send")
        decision = decide(err, attempt, rt.settings.retry)
        shown = err.masked(self.masker)  # from here on, only the masked copy
        outcome: Retry | DeadLetter | Stopped
        if decision.retry_in is not None:
            delay = _within_deadline(decision.retry_in, record, now)
            outcome = self.retry(delay, str(shown), cause=shown, **_error_fields(shown))
        else:
            reason = decision.reason or Reason.RETRIES_EXHAUSTED
            outcome = self.dead_letter(reason, str(shown), error=shown)
        attempt_failed(rt, ctx.key, shown, decision)
        return outcome

    def unforeseen(
        self, err: Exception, *, stage: str, may_have_sent: bool = False
    ) -> Retry | DeadLetter | Stopped:
        """The step raised something unforeseen (a bug); its traceback goes to the log, masked.

        When the request may have reached Engage (``may_have_sent``), the send is dead-lettered
        ``internal_error`` at once, never retried blindly. Otherwise it is retried like a
        transient failure (``ENGAGE_RETRY_MAX_ATTEMPTS`` times, growing delays), then
        dead-lettered ``internal_error``. The outcome carries no error: ``err``'s text is not
        known to be masked, and the log has it.
        """
        rt, ctx = self.rt, self.ctx
        lines = "".join(traceback.format_exception(type(err), err, err.__traceback__)).rstrip()
        logger.error("unexpected error in %s:\n%s", stage, self.masker(lines))
        name = type(err).__name__
        entry = {"type": name, "message": self.masker(str(err))}
        if may_have_sent:
            detail = f"{name} during {stage}; Engage may have sent it"
            return self.dead_letter(Reason.INTERNAL_ERROR, detail, entry=entry)
        failures = rt.ledger.count_failure(ctx.key, f"{stage}:internal")
        policy = rt.settings.retry
        if failures <= policy.max_attempts:
            delay = min(policy.base_delay + policy.backoff * (failures - 1), policy.max_delay)
            return self.retry(delay, f"{name} in {stage}", error=name, operation=stage)
        detail = f"{name} in {stage}, {failures} times; nothing was sent"
        return self.dead_letter(Reason.INTERNAL_ERROR, detail, entry=entry)

    def retry(
        self,
        delay: float,
        summary: str,
        *,
        cause: EngageError | None = None,
        event: str = "retrying",
        **fields: Any,
    ) -> Retry:
        """Record the send ``retrying`` (``summary``: why, masked) and log ``event`` with
        ``fields``; the retry carries ``cause``, Engage's error masked, if there was one."""
        ctx = self.ctx
        self.rt.ledger.mark_retrying(ctx.key, ctx.owner, summary, delay)
        log_event(
            event,
            key=ctx.key,
            task_id=ctx.task_id,
            recipient=self.recipient,
            retry_in=round(delay, 3),
            **fields,
        )
        return Retry(delay, cause)

    def dead_letter(
        self,
        reason: Reason,
        detail: str,
        *,
        error: EngageError | None = None,
        entry: dict[str, str] | None = None,
    ) -> DeadLetter | Stopped:
        """Move the send to the dead-letter store, with Engage's ``error`` (masked) or ``entry``.

        :class:`Stopped` ``sent`` when it was sent (or cancelled) meanwhile: nothing to store.
        """
        moved = self._move(reason, detail, error=error, entry=entry)
        return Stopped(SendState.SENT) if moved is None else moved

    def interrupted(self, detail: str) -> DeadLetter | Busy:
        """Dead-letter ``outcome_unknown`` a send whose holder's lease was found lapsed, if it
        still is when it is moved; :class:`Busy` when the holder lived after all (it renewed the
        lease before calling Engage, or gave it back after an answer that proves nothing was
        sent) or another delivery holds it now.
        """
        moved = self._move(Reason.OUTCOME_UNKNOWN, detail, lapsed_lease=True)
        return Busy() if moved is None else moved

    def _move(
        self,
        reason: Reason,
        detail: str,
        *,
        error: EngageError | None = None,
        entry: dict[str, str] | None = None,
        lapsed_lease: bool = False,
    ) -> DeadLetter | None:
        """The dead letter, or None when the store would not take the send (see ``add``)."""
        rt, ctx = self.rt, self.ctx
        if isinstance(error, EngageAPIError):
            entry = error.to_dict()
        elif error is not None:
            entry = {"type": type(error).__name__, "message": str(error)}
        added = rt.dead_letters.add(
            ctx.key,
            reason=reason,
            detail=detail,
            error=entry,
            task_ids=ctx.task_ids,
            lapsed_lease=lapsed_lease,
        )
        if added is None and not lapsed_lease:
            # The record was lost under this step: write it in full, so the entry can be replayed.
            claim_from_message(rt, self.request, ctx)
            added = rt.dead_letters.add(
                ctx.key, reason=reason, detail=detail, error=entry, task_ids=ctx.task_ids
            )
        if not added:
            return None
        log_event(
            "dead_lettered",
            key=ctx.key,
            task_id=ctx.task_id,
            recipient=self.recipient,
            reason=reason,
            detail=detail,
            **(_error_fields(error) if error else {}),
        )
        return DeadLetter(reason, detail, error)


def _within_deadline(delay: float, record: dict[str, str], now: float) -> float:
    """``delay``, or less: never wait past the send's deadline to find out it expired.

    ``now`` is the Redis clock's, as the deadline is.
    """
    if "expires_at" not in record:
        return delay
    remaining = float(record["expires_at"]) - now
    return min(delay, max(remaining, 0.0) + DEADLINE_SLACK)


def _error_fields(err: EngageError) -> dict[str, Any]:
    if isinstance(err, EngageAPIError):
        return {"status": err.status, "error_code": err.error_code, "operation": err.operation}
    return {"error": type(err).__name__, "operation": err.operation}


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
