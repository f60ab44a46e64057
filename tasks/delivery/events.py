"""One structured log line per state change of a send, with nothing a reader may not see; and
one entry per Engage call in the send's attempt history (:mod:`tasks.state.attempts`)."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from tasks.core.errors import EngageAPIError, EngageError
from tasks.core.masking import mask_value
from tasks.delivery import metrics
from tasks.state.attempts import AttemptEntry, AttemptOutcome
from tasks.state.enums import Reason

if TYPE_CHECKING:
    from tasks.delivery.retry_policy import Decision
    from tasks.delivery.runtime import Runtime

logger = logging.getLogger("engage.delivery")


def log_event(event: str, *, key: str, task_id: str | None = None, **fields: Any) -> None:
    """Log ``event`` for ``key`` as one JSON line (every value masked) and count it."""
    metrics.count_event(event, fields)
    record = {"event": event, "key": key, "task_id": task_id}
    record.update({k: v for k, v in fields.items() if v is not None})
    level = logging.WARNING if event == "dead_lettered" else logging.INFO
    if fields.get("reason") == "auth_failed":
        level = logging.CRITICAL
    logger.log(level, "%s", json.dumps(mask_value(record), default=str, sort_keys=False))


def attempt_answered(rt: Runtime, key: str, operation: str, status: int) -> None:
    """Engage answered ``operation`` with success ``status``: one entry in the send's history."""
    _add_attempt(rt, key, AttemptEntry(stage=operation, outcome=AttemptOutcome.OK, status=status))


def attempt_failed(rt: Runtime, key: str, err: EngageError, decision: Decision) -> None:
    """Engage's call failed with ``err`` and the retry policy decided ``decision``: one entry in
    the send's history. ``err`` must be the masked copy (``err.masked(mask)``): its ``errorCode``
    is Engage's own text, which may echo a value of the request."""
    if decision.retry_in is not None:
        outcome = AttemptOutcome.RETRY
    elif decision.reason == Reason.OUTCOME_UNKNOWN:
        outcome = AttemptOutcome.UNKNOWN
    else:
        outcome = AttemptOutcome.DEAD_LETTER
    code = err.error_code if isinstance(err, EngageAPIError) else None
    status = getattr(err, "status", None)
    entry = AttemptEntry(
        stage=err.operation,
        outcome=outcome,
        status=status if isinstance(status, int) else None,
        error=code or type(err).__name__,
        retry_in=None if decision.retry_in is None else round(decision.retry_in, 3),
        reason=None if decision.reason is None else str(decision.reason),
    )
    _add_attempt(rt, key, entry)


def _add_attempt(rt: Runtime, key: str, entry: AttemptEntry) -> None:
    # The history is for reading, not for deciding: a Redis that fails this write must not
    # turn a recorded send or a decided retry into another path. Logged, then left.
    try:
        rt.attempts.add(key, entry)
    except Exception as err:  # any failure here leaves the send as decided
        logger.warning("attempt history of %s not written: %s", key, type(err).__name__)
