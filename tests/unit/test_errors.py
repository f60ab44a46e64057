"""EngageError.masked: a copy of the same error whose every text is masked, and nothing more."""

from __future__ import annotations

import pytest

from tasks.errors import (
    EngageServerError,
    OutcomeUnknown,
    RateLimited,
    RequestNotSent,
    UnexpectedAnswer,
    UnknownRecipient,
)
from tasks.masking import Masker

SECRET = "Zebulon Quartz"
MASK = Masker([SECRET])


def test_masked_api_error_keeps_what_retries_decide_on() -> None:
    """Type, status, error code and Retry-After survive; the copy is a new object."""
    err = RateLimited("contact/get", status=429, error_code="OPERATION_DISABLED", retry_after=7.0)
    copy = err.masked(MASK)
    assert type(copy) is RateLimited
    assert (copy.status, copy.error_code, copy.retry_after) == (429, "OPERATION_DISABLED", 7.0)
    assert copy is not err


def test_masked_api_error_masks_message_and_every_detail() -> None:
    """Engage's message and each text in its details, nested ones too, are masked."""
    err = UnknownRecipient(
        "contact/get",
        status=400,
        error_code="NO_SUCH_OBJECT",
        message=f"no contact {SECRET}",
        details={"value": SECRET, "more": {"list": [SECRET, 3]}},
    )
    copy = err.masked(MASK)
    assert copy.engage_message == "no contact ***"
    assert copy.details == {"value": "***", "more": {"list": ["***", 3]}}
    assert copy.to_dict()["message"] == "no contact ***"


def test_masked_unexpected_answer_masks_problem_and_location() -> None:
    """The quoted page and the redirect target are masked; may_have_acted is kept."""
    err = UnexpectedAnswer(
        "message/sendSingle",
        status=302,
        content_type="text/html",
        problem=f"a page titled {SECRET}",
        location="https://proxy.example/for/cust-991",
        may_have_acted=True,
    )
    copy = err.masked(Masker([SECRET, "cust-991"]))
    assert copy.problem == "a page titled ***"
    assert copy.location == "https://proxy.example/for/***"
    assert copy.may_have_acted


@pytest.mark.parametrize("kind", [RequestNotSent, OutcomeUnknown])
def test_masked_transport_error_masks_its_description(
    kind: type[RequestNotSent | OutcomeUnknown],
) -> None:
    """Errors without an answer mask their text too (a proxy's reason may quote anything)."""
    copy = kind("contact/get", f"connection lost after {SECRET}").masked(MASK)
    assert type(copy) is kind
    assert str(copy) == "contact/get: connection lost after ***"


def test_masked_copy_args_hold_only_masked_text() -> None:
    """args, which Celery's repr and Flower's traceback show, are built from the masked texts."""
    err = EngageServerError("message/sendSingle", status=503, message=f"failed for {SECRET}")
    assert err.masked(MASK).args == ("message/sendSingle: HTTP 503: failed for ***",)


def test_masked_copy_carries_no_chain() -> None:
    """The original's cause and context (a parser error quoting the answer) are not carried over."""
    try:
        try:
            raise ValueError(f"unreadable: {SECRET}")
        except ValueError as parse_error:
            raise RequestNotSent("contact/get", "x") from parse_error
    except RequestNotSent as err:
        copy = err.masked(MASK)
    assert (copy.__cause__, copy.__context__, copy.__traceback__) == (None, None, None)
