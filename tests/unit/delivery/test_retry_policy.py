"""Retry decisions per error class."""

from __future__ import annotations

import random

import pytest

from tasks.core.errors import (
    CredentialsRejected,
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
from tasks.delivery.retry_policy import (
    JITTER,
    TOLD_WAIT_FLOOR,
    TOLD_WAIT_MAX_CALLS,
    Attempt,
    decide,
)

POLICY = RetrySettings(
    base_delay=30,
    backoff=30,
    max_delay=900,
    max_attempts=3,
    max_total=1800,
    unknown_recipient_retries=2,
    unknown_recipient_delay=5,
    unknown_error_retries=2,
)


def lookup(retries: int = 0, elapsed: float = 0.0) -> Attempt:
    """A failed contact/get."""
    return Attempt(retries=retries, elapsed=elapsed, sending=False)


def sending(retries: int = 0, elapsed: float = 0.0) -> Attempt:
    """A failed message/sendSingle."""
    return Attempt(retries=retries, elapsed=elapsed, sending=True)


def server_error(status: int = 503) -> EngageServerError:
    """A 5xx."""
    return EngageServerError("message/sendSingle", status=status)


def client_error(code: str | None, status: int = 400) -> EngageClientError:
    """A 4xx with an error code."""
    return EngageClientError("message/sendSingle", status=status, error_code=code)


def test_5xx_follows_engage_guidance_30_s_then_15_min_then_stop() -> None:
    """Production defaults: at least 30 s, then at least 15 min, then dead-letter."""
    rng = random.Random(1)
    first = decide(server_error(), sending(0), POLICY, rng)
    second = decide(server_error(), sending(1, elapsed=40), POLICY, rng)
    third = decide(server_error(), sending(2, elapsed=1000), POLICY, rng)
    assert first.retry_in is not None
    assert 30 <= first.retry_in <= 36
    assert second.retry_in is not None
    assert 900 <= second.retry_in <= 1080
    assert third.reason == "retries_exhausted"


def test_total_time_budget_ends_retries() -> None:
    """A retry that would end past max_total is not scheduled."""
    assert decide(server_error(), sending(1, elapsed=1000), POLICY).reason == "retries_exhausted"


@pytest.mark.parametrize(
    "error",
    [
        RequestNotSent("message/sendSingle", "refused"),
        server_error(500),
        RateLimited("contact/get", status=429),
    ],
)
def test_transient_failures_are_retried(error: EngageError) -> None:
    """Connection failures before sending, 5xx and a bare 429 retry with backoff."""
    first, second = (decide(error, sending(n), POLICY).retry_in for n in range(2))
    assert first is not None
    assert second is not None
    # base_delay, then base_delay * backoff, each with up to JITTER more (never less).
    assert POLICY.base_delay <= first <= POLICY.base_delay * (1 + JITTER)
    longer = POLICY.base_delay * POLICY.backoff
    assert longer <= second <= longer * (1 + JITTER)


def test_retry_after_is_obeyed_beyond_the_attempts_for_failures() -> None:
    """Retry-After sets the delay, even past ENGAGE_RETRY_MAX_ATTEMPTS (a 429 is no failure)."""
    error = RateLimited("contact/get", status=429, retry_after=12)
    assert decide(error, lookup(retries=3), POLICY).retry_in == 12


@pytest.mark.parametrize("retry_after", [0.0, 0.2])
def test_retry_after_zero_still_waits_a_floor(retry_after: float) -> None:
    """``Retry-After: 0`` (or a past date, read as 0) waits at least TOLD_WAIT_FLOOR."""
    error = RateLimited("message/sendSingle", status=429, retry_after=retry_after)
    assert decide(error, sending(0), POLICY).retry_in == TOLD_WAIT_FLOOR


def test_floor_doubles_with_each_call_up_to_the_base_delay() -> None:
    """A server that keeps saying 0 gets calls ever further apart, then base_delay apart."""
    error = RateLimited("message/sendSingle", status=429, retry_after=0)
    delays = [decide(error, sending(n), POLICY).retry_in for n in range(7)]
    assert delays == [1, 2, 4, 8, 16, 30, 30]


def test_429s_count_toward_a_bounded_budget() -> None:
    """After TOLD_WAIT_MAX_CALLS failed calls of a step, told-to-wait ends the retries."""
    error = RateLimited("message/sendSingle", status=429, retry_after=0)
    last = sending(TOLD_WAIT_MAX_CALLS - 2)
    assert decide(error, last, POLICY).retry_in is not None
    assert decide(error, sending(TOLD_WAIT_MAX_CALLS - 1), POLICY).reason == "retries_exhausted"


def test_retry_after_zero_gives_few_calls_in_ten_seconds() -> None:
    """Retry-After 0 never gives a burst (95 calls in 10 s): at most 4 calls start in 10 s."""
    error = RateLimited("message/sendSingle", status=429, retry_after=0)
    clock, calls = 0.0, 0
    while clock < 10:
        calls += 1
        decision = decide(error, sending(calls - 1, elapsed=clock), POLICY)
        assert decision.retry_in is not None
        clock += decision.retry_in
    assert calls <= 4


def test_unknown_recipient_on_lookup_retries_briefly_then_dead_letters() -> None:
    """A few short lookups for a contact created a moment ago, then unknown_recipient."""
    error = UnknownRecipient("contact/get", status=400, error_code="NO_SUCH_OBJECT")
    first = decide(error, lookup(0), POLICY)
    assert first.retry_in is not None
    assert 5 <= first.retry_in <= 6
    assert decide(error, lookup(2), POLICY).reason == "unknown_recipient"


@pytest.mark.parametrize("code", ["MISSING_PARAMETER", "NO_SUCH_OBJECT", "INVALID_PARAMETER"])
def test_permanent_400s_dead_letter_at_once(code: str) -> None:
    """Known permanent codes are not retried."""
    assert decide(client_error(code), sending(0), POLICY).reason == "rejected"


def test_unknown_400_codes_get_a_bounded_retry() -> None:
    """An errorCode we do not know is retried a little, then dead-lettered."""
    assert decide(client_error("SOMETHING_NEW"), sending(0), POLICY).retry_in is not None
    assert decide(client_error("SOMETHING_NEW"), sending(2), POLICY).reason == "rejected"


@pytest.mark.parametrize("status", [401, 403])
def test_credentials_errors_park_at_once(status: int) -> None:
    """Wrong credentials are not retried per message."""
    error = CredentialsRejected("contact/get", status=status)
    assert decide(error, lookup(0), POLICY).reason == "auth_failed"


def test_unknown_outcome_of_a_send_is_dead_lettered_by_default() -> None:
    """A send that may have happened is never resent blindly."""
    error = OutcomeUnknown("message/sendSingle", "timeout")
    assert decide(error, sending(0), POLICY).reason == "outcome_unknown"


def test_unknown_outcome_may_be_retried_when_configured() -> None:
    """ENGAGE_ON_UNKNOWN_OUTCOME=retry chooses a retry instead."""
    policy = RetrySettings(on_unknown_outcome="retry")
    assert (
        decide(OutcomeUnknown("message/sendSingle", "timeout"), sending(0), policy).retry_in
        is not None
    )


def test_unknown_outcome_of_a_lookup_is_simply_retried() -> None:
    """A lookup changes nothing in Engage, so a lost answer is retried."""
    assert decide(OutcomeUnknown("contact/get", "timeout"), lookup(0), POLICY).retry_in is not None


def redirected(operation: str = "message/sendSingle") -> UnexpectedAnswer:
    """A proxy's redirect to its login page."""
    return UnexpectedAnswer(
        operation,
        status=302,
        content_type="text/html",
        problem="a redirect",
        location="https://proxy.example/login",
    )


def odd_success() -> UnexpectedAnswer:
    """A 200 to a send that may be Engage's own answer after sending."""
    return UnexpectedAnswer(
        "message/sendSingle",
        status=200,
        content_type="application/json",
        problem="not the documented 204",
        may_have_acted=True,
    )


def test_redirected_send_is_retried_with_backoff() -> None:
    """A proxy answered instead of Engage: nothing was sent, so the send is retried."""
    decision = decide(redirected(), sending(0), POLICY, random.Random(1))
    assert decision.retry_in is not None
    assert 30 <= decision.retry_in <= 36


@pytest.mark.parametrize("attempt", [sending(2), lookup(2)])
def test_lasting_unexpected_answer_is_dead_lettered_as_such(attempt: Attempt) -> None:
    """After unknown_error_retries the reason is unexpected_answer, not a generic one."""
    error = redirected("message/sendSingle" if attempt.sending else "contact/get")
    assert decide(error, attempt, POLICY).reason == "unexpected_answer"


def test_unexpected_answer_that_outlasts_the_budget_is_still_named() -> None:
    """When the time budget ends the retries early, the reason still says what happened."""
    assert decide(redirected(), sending(1, elapsed=1000), POLICY).reason == "unexpected_answer"


def test_odd_success_to_a_send_is_never_resent_blindly() -> None:
    """A 2xx that may be Engage's own answer is dead-lettered at once, like an unknown outcome."""
    assert decide(odd_success(), sending(0), POLICY).reason == "unexpected_answer"


def test_odd_success_to_a_send_is_retried_when_configured() -> None:
    """ENGAGE_ON_UNKNOWN_OUTCOME=retry lets it be retried, as for OutcomeUnknown."""
    policy = RetrySettings(on_unknown_outcome="retry")
    assert decide(odd_success(), sending(0), policy).retry_in is not None
