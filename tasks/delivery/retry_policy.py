"""What to do after a failed Engage call: retry after a delay, or dead-letter with a reason.

Retryability follows the error's type (see :mod:`tasks.core.errors`), never a blanket rule.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from tasks.core.errors import (
    CredentialsRejected,
    EngageAPIError,
    EngageClientError,
    EngageError,
    EngageServerError,
    OutcomeUnknown,
    RateLimited,
    RequestNotSent,
    UnexpectedAnswer,
    UnknownRecipient,
)
from tasks.core.settings import RetrySettings
from tasks.state.enums import Reason

#: Engage error codes that will not change on a second try of the same request.
PERMANENT_ERROR_CODES = frozenset(
    {
        "ARCHIVED_ATTRIBUTE",
        "INCORRECT_STATUS",
        "INVALID_ATTRIBUTE",
        "INVALID_ATTRIBUTE_VALUE",
        "INVALID_JOB_ARGUMENT",
        "INVALID_JOB_DEFINITION_ID",
        "INVALID_PARAMETER",
        "INVALID_REQUEST",
        "MAXIMUM_ATTRIBUTE_COUNT_EXCEEDED",
        "MAXIMUM_SIZE_EXCEEDED",
        "MISSING_JOB_ARGUMENT",
        "MISSING_PARAMETER",
        "NO_SUCH_ATTRIBUTE",
        "NO_SUCH_OBJECT",
        "OBJECT_ALREADY_EXISTS",
        "OPERATION_DISABLED",
        "PERMISSION_DENIED",
    }
)
#: Upward jitter: Engage asks to wait *at least* the delay, so jitter only adds.
JITTER = 0.2
#: The shortest wait when told to wait (429, Retry-After): ``Retry-After: 0`` or a date in the
#: past still means "not now". It doubles with each failed call of the step, up to
#: ``ENGAGE_RETRY_BASE_DELAY`` (1, 2, 4, 8, 16, 30 s with the defaults).
TOLD_WAIT_FLOOR = 1.0
#: Failed calls of one step (429s included) after which being told to wait ends the retries:
#: a server that keeps answering 429 gets at most this many calls per step of a send.
TOLD_WAIT_MAX_CALLS = 10


@dataclass(frozen=True)
class Decision:
    """Retry after ``retry_in`` seconds, or dead-letter with ``reason``."""

    retry_in: float | None = None
    reason: Reason | None = None


@dataclass(frozen=True)
class Attempt:
    """Where a send stands: how many retries it has had and how long it has been trying."""

    retries: int
    elapsed: float
    sending: bool  # the failed call was message/sendSingle (not the lookup)


def decide(  # noqa: PLR0911  (a decision table reads best as early returns)
    error: EngageError, attempt: Attempt, policy: RetrySettings, rng: random.Random | None = None
) -> Decision:
    """The decision for one failure."""
    rng = rng or random.Random()
    if isinstance(error, CredentialsRejected):
        return Decision(reason=Reason.AUTH_FAILED)
    if isinstance(error, UnknownRecipient):
        if not attempt.sending and attempt.retries < policy.unknown_recipient_retries:
            return Decision(retry_in=_jittered(policy.unknown_recipient_delay, rng))
        return Decision(reason=Reason.UNKNOWN_RECIPIENT)
    if isinstance(error, UnexpectedAnswer):
        return _unexpected_answer(error, attempt, policy, rng)
    if isinstance(error, OutcomeUnknown) and attempt.sending:
        if policy.on_unknown_outcome != "retry":
            return Decision(reason=Reason.OUTCOME_UNKNOWN)
        return _backoff(attempt, policy, rng)
    if isinstance(error, EngageAPIError) and error.retry_after is not None:
        return _told_to_wait(error.retry_after, attempt, policy)
    if isinstance(error, RateLimited):
        return _backoff(attempt, policy, rng)
    if isinstance(error, EngageClientError):
        if error.error_code in PERMANENT_ERROR_CODES or error.status in (404, 405, 406, 415):
            return Decision(reason=Reason.REJECTED)
        if attempt.retries < policy.unknown_error_retries:
            return _backoff(attempt, policy, rng)
        return Decision(reason=Reason.REJECTED)
    if isinstance(error, EngageServerError | RequestNotSent | OutcomeUnknown):
        return _backoff(attempt, policy, rng)
    return Decision(reason=Reason.RETRIES_EXHAUSTED)


def _unexpected_answer(
    error: UnexpectedAnswer, attempt: Attempt, policy: RetrySettings, rng: random.Random
) -> Decision:
    """Something other than Engage's API answered: a deployment problem, retried a little."""
    if attempt.sending and error.may_have_acted and policy.on_unknown_outcome != "retry":
        # A 2xx that is not a page may be Engage's own answer after sending: never resent blindly.
        return Decision(reason=Reason.UNEXPECTED_ANSWER)
    # A redirect or an HTML page came from a proxy or login page in front of Engage: the request
    # never reached the API, so even a send is safe to repeat. The bound is the one for errors we
    # cannot classify (ENGAGE_UNKNOWN_ERROR_RETRIES): a few backed-off tries ride out a proxy's
    # brief maintenance page; a lasting one needs an operator, who finds it by its reason.
    if attempt.retries < policy.unknown_error_retries:
        decision = _backoff(attempt, policy, rng)
        if decision.retry_in is not None:
            return decision
    return Decision(reason=Reason.UNEXPECTED_ANSWER)


def _backoff(attempt: Attempt, policy: RetrySettings, rng: random.Random) -> Decision:
    if attempt.retries + 1 >= policy.max_attempts:
        return Decision(reason=Reason.RETRIES_EXHAUSTED)
    delay = min(policy.base_delay * policy.backoff**attempt.retries, policy.max_delay)
    delay = _jittered(delay, rng)
    if attempt.elapsed + delay > policy.max_total:
        return Decision(reason=Reason.RETRIES_EXHAUSTED)
    return Decision(retry_in=delay)


def _told_to_wait(seconds: float, attempt: Attempt, policy: RetrySettings) -> Decision:
    # Waiting as told may take more calls than ENGAGE_RETRY_MAX_ATTEMPTS (a 429 is no failure of
    # Engage), but each one counts: TOLD_WAIT_MAX_CALLS bounds them, and the floor keeps a
    # Retry-After of 0 from turning the retries into a loop as fast as the rate limit allows.
    if attempt.retries + 1 >= max(TOLD_WAIT_MAX_CALLS, policy.max_attempts):
        return Decision(reason=Reason.RETRIES_EXHAUSTED)
    floor = min(TOLD_WAIT_FLOOR * 2**attempt.retries, max(policy.base_delay, 0.0))
    delay = min(max(seconds, floor), policy.max_delay)
    if attempt.elapsed + delay > policy.max_total:
        return Decision(reason=Reason.RETRIES_EXHAUSTED)
    return Decision(retry_in=delay)


def _jittered(delay: float, rng: random.Random) -> float:
    return delay * (1 + JITTER * rng.random())
