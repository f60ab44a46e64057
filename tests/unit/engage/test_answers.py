"""What counts as Engage's answer: contact ids, and how an unexpected answer is described."""

from __future__ import annotations

import pickle

import pytest
import requests

from tasks.core.errors import EngageError, UnexpectedAnswer
from tasks.engage import answers

REQUEST_URL = "https://tenant.example/api/rest/v19/message/sendSingle?messageId=1&recipientId=2"


def response(
    status: int, body: bytes = b"", content_type: str | None = None, **headers: str
) -> requests.Response:
    """An answer as requests hands it over, for the request at REQUEST_URL."""
    answer = requests.Response()
    answer.status_code = status
    answer._content = body
    answer.url = REQUEST_URL
    if content_type is not None:
        answer.headers["Content-Type"] = content_type
    answer.headers.update(headers)
    return answer


@pytest.mark.parametrize(
    ("value", "expected"), [(12, 12), ("12", 12), (1, 1), (2**63 - 1, 2**63 - 1)]
)
def test_contact_id_accepts_a_positive_64_bit_integer_or_its_digits(
    value: object, expected: int
) -> None:
    """A JSON integer, or a string of digits, in 1 .. 2**63-1 is a contact id."""
    assert answers.contact_id(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        -5,
        0,
        2**63,
        2**70,
        " 12 ",
        "-5",
        "+12",
        "0",
        "1" * 40,
        True,
        3.5,
        3.0,
        "3.0",
        "١٢",
        "",
        None,
    ],
)
def test_contact_id_refuses_anything_else(value: object) -> None:
    """Signs, whitespace, floats (even 3.0), booleans and out-of-range values are refused."""
    with pytest.raises(ValueError, match="contactId"):
        answers.contact_id(value)


def test_contact_id_error_never_quotes_part_of_a_value() -> None:
    """A value too long to quote is left out whole, not cut inside (a number half shown)."""
    with pytest.raises(ValueError, match="contactId") as caught:
        answers.contact_id("48505606707" * 10)
    assert "4850" not in str(caught.value)


def test_redirect_is_described_with_its_location() -> None:
    """A 302 names status, content type and Location, and suggests what answered."""
    redirect = response(302, b"<html></html>", "text/html", Location="https://proxy.example/login")
    error = answers.unexpected("message/sendSingle", redirect, sends=True)
    assert str(error) == (
        "message/sendSingle: unexpected answer: HTTP 302 text/html, "
        "Location: https://proxy.example/login "
        "(a redirect: a proxy or login page in front of Engage?)"
    )
    assert not error.may_have_acted


def test_redirect_target_drops_credentials_and_query() -> None:
    """The Location is shown without user, password, query or fragment (tokens, our own ids)."""
    location = "https://user:secret@proxy.example:8443/sso?return=/x&phone=48505606707#f"
    target = answers.redirect_target(response(307, Location=location))
    assert target == "https://proxy.example:8443/sso?..."


def test_relative_redirect_is_resolved_against_the_request() -> None:
    """A relative Location is shown as the absolute address it points to."""
    assert answers.redirect_target(response(302, Location="/login")) == (
        "https://tenant.example/login"
    )


def test_html_page_is_named_by_its_title_unescaped() -> None:
    """A 200 HTML page says it is one, quoting its title as text (masked later, by value)."""
    page = b"<html><head><title>Login for O&#x27;Brien &amp; a@example.com</title></head></html>"
    error = answers.unexpected("contact/get", response(200, page, "text/html; charset=utf-8"))
    assert 'HTTP 200 text/html (an HTML page titled "Login for O\'Brien & a@example.com"' in str(
        error
    )


def test_html_page_is_recognised_without_a_content_type() -> None:
    """A page is a page even when the proxy labels it something else."""
    page = b"  <!DOCTYPE html><html><body>Sign in</body></html>"
    assert answers.is_html(response(200, page, "application/json"))


def test_non_page_2xx_to_a_send_may_have_acted() -> None:
    """A 2xx to a send that is no page may be Engage's own answer after sending."""
    error = answers.unexpected(
        "message/sendSingle", response(200, b"{}", "application/json"), sends=True
    )
    assert error.may_have_acted
    assert str(error).endswith("(not the documented answer; the message may have been sent)")


def test_page_2xx_to_a_send_did_not_act() -> None:
    """An HTML page to a send came from something in front of Engage: nothing was sent."""
    page = response(200, b"<html><title>Sign in</title></html>", "text/html")
    assert not answers.unexpected("message/sendSingle", page, sends=True).may_have_acted


def test_missing_content_type_is_said() -> None:
    """An answer without Content-Type says so instead of leaving a gap."""
    error = answers.unexpected("contact/get", response(200, b"12"), "not JSON")
    assert "HTTP 200 without Content-Type (not JSON)" in str(error)


def test_unexpected_answer_is_an_engage_error_that_survives_pickling() -> None:
    """UnexpectedAnswer is an EngageError and keeps its fields through pickle."""
    error = answers.unexpected(
        "message/sendSingle", response(302, Location="https://proxy.example/login")
    )
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301  (our own bytes)
    assert isinstance(copy, UnexpectedAnswer)
    assert isinstance(copy, EngageError)
    assert (str(copy), copy.status, copy.location) == (str(error), 302, error.location)
