"""The sandbox's scripted faults, each driven by the real client over loopback, REST and SOAP.

Every test asserts both what the client raised and what the sandbox's call log shows: after a
redirect, no follow-up request may reach the sandbox's ``/login`` page.
"""

from __future__ import annotations

import pytest
import requests

from tasks.core.errors import EngageClientError, EngageServerError, UnexpectedAnswer
from tasks.core.request import Identifier
from tasks.engage.base import EngageClient
from tasks.engage.http import make_session
from tasks.engage.rest import RestEngageClient
from tasks.engage.soap import SoapEngageClient
from tasks.sandbox import Sandbox
from tasks.sandbox.faults import parse_step
from tasks.sandbox.gate import LOGIN

USER, PASSWORD = "api@example.com", "sandbox-password"
DEMO_MOBILE, DEMO_CONTACT, DEMO_MESSAGE = "48505606707", 33457, 23541
LOOKUP, SEND = "contact/get", "message/sendSingle"
TRANSPORTS = ["rest", "soap"]


@pytest.fixture(params=TRANSPORTS)
def client(request: pytest.FixtureRequest, sandbox: Sandbox) -> EngageClient:
    """The real client of each transport, pointed at the sandbox."""
    url = sandbox.soap_url if request.param == "soap" else sandbox.base_url
    transport = SoapEngageClient if request.param == "soap" else RestEngageClient
    return transport(
        base_url=url,
        session=make_session(USER, PASSWORD, base_url=url),
        connect_timeout=2.0,
        read_timeout=5.0,
    )


def script(sandbox: Sandbox, operation: str, *steps: object) -> None:
    """Script the next calls of ``operation``."""
    sandbox.state.set_faults({"script": {operation: list(steps)}})


def lookup(client: EngageClient) -> int:
    """Look the demo contact up."""
    return client.get_contact(Identifier("MOBILE", DEMO_MOBILE)).contact_id


def send(client: EngageClient) -> None:
    """Send the demo message to the demo contact."""
    client.send_single(DEMO_MESSAGE, DEMO_CONTACT, [])


def operations(sandbox: Sandbox) -> list[str]:
    """The operations the sandbox received, in order (the proxy's login page included)."""
    return [call.operation for call in sandbox.state.calls]


# -- redirects ---------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [302, 307])
def test_redirected_send_is_unexpected_and_not_followed(
    sandbox: Sandbox, client: EngageClient, status: int
) -> None:
    """A redirect to a login page is UnexpectedAnswer naming it; no GET or re-POST follows."""
    script(sandbox, SEND, f"redirect:{status}")
    with pytest.raises(UnexpectedAnswer) as caught:
        send(client)
    assert f"HTTP {status} text/html, Location: {sandbox.root_url}/login?..." in str(caught.value)
    assert "a redirect: a proxy or login page" in str(caught.value)
    assert operations(sandbox) == [SEND]
    assert not sandbox.state.sends


def test_redirect_to_an_outside_proxy_names_it(sandbox: Sandbox, client: EngageClient) -> None:
    """The scripted Location is reported as it came, minus its query."""
    script(sandbox, SEND, "redirect:307:https://proxy.example/login?next=/api")
    with pytest.raises(UnexpectedAnswer) as caught:
        send(client)
    assert str(caught.value) == (
        "message/sendSingle: unexpected answer: HTTP 307 text/html, "
        "Location: https://proxy.example/login?... "
        "(a redirect: a proxy or login page in front of Engage?)"
    )


def test_redirected_lookup_is_unexpected_and_not_followed(
    sandbox: Sandbox, client: EngageClient
) -> None:
    """contact/get does not follow a redirect either."""
    script(sandbox, LOOKUP, "redirect:302")
    with pytest.raises(UnexpectedAnswer, match="HTTP 302"):
        lookup(client)
    assert operations(sandbox) == [LOOKUP]


def test_a_client_that_follows_redirects_would_show_in_the_log(sandbox: Sandbox) -> None:
    """The call-log assertions above can fail: a follow-up request reaches the login page."""
    script(sandbox, SEND, "redirect:302")
    requests.post(
        f"{sandbox.base_url}/message/sendSingle",
        params={"messageId": DEMO_MESSAGE, "recipientId": DEMO_CONTACT},
        json={"parameters": []},
        auth=(USER, PASSWORD),
        timeout=5,
    )
    assert operations(sandbox) == [SEND, LOGIN]


# -- HTML pages --------------------------------------------------------------------------------


def test_html_page_on_lookup_says_what_it_was(sandbox: Sandbox, client: EngageClient) -> None:
    """A 200 login page is an HTML page in the error, not "non-JSON answer"."""
    script(sandbox, LOOKUP, "html")
    with pytest.raises(UnexpectedAnswer) as caught:
        lookup(client)
    assert 'HTTP 200 text/html (an HTML page titled "Sign in": a proxy' in str(caught.value)
    assert "non-JSON" not in str(caught.value)
    assert operations(sandbox) == [LOOKUP]


def test_html_page_echo_quotes_the_identifier(sandbox: Sandbox, client: EngageClient) -> None:
    """html:echo quotes the number in the page title, and the client's error quotes it whole."""
    script(sandbox, LOOKUP, "html:echo")
    with pytest.raises(UnexpectedAnswer) as caught:
        lookup(client)
    assert f'titled "Sign in to continue with {DEMO_MOBILE}"' in str(caught.value)


# -- error answers echoing the request -----------------------------------------------------------


def test_echo_error_on_lookup_quotes_the_identifier(sandbox: Sandbox, client: EngageClient) -> None:
    """echo:400 answers Engage's error (a SOAP fault on SOAP) quoting the identifier twice."""
    script(sandbox, LOOKUP, "echo:400")
    with pytest.raises(EngageClientError) as caught:
        lookup(client)
    assert caught.value.engage_message == f"Invalid value '{DEMO_MOBILE}'."
    assert caught.value.details["value"] == DEMO_MOBILE


def test_echo_error_on_send_quotes_the_parameter_values(
    sandbox: Sandbox, client: EngageClient
) -> None:
    """echo:503 on a send answers a server error quoting every parameter value; nothing sent."""
    script(sandbox, SEND, "echo:503")
    with pytest.raises(EngageServerError) as caught:
        client.send_single(DEMO_MESSAGE, DEMO_CONTACT, [("a", "Zebulon Quartz"), ("b", "x-77")])
    assert caught.value.engage_message == "Failed while processing 'Zebulon Quartz', 'x-77'."
    assert not sandbox.state.sends


def test_html_page_on_send_is_not_a_send(sandbox: Sandbox, client: EngageClient) -> None:
    """A 200 page to a send is no success, and says nothing was sent by Engage."""
    script(sandbox, SEND, "html")
    with pytest.raises(UnexpectedAnswer) as caught:
        send(client)
    assert not caught.value.may_have_acted
    assert not sandbox.state.sends
    assert operations(sandbox) == [SEND]


# -- contact ids -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "literal", ["-5", "0", "1180591620717411303424", '" 12 "', "3.5", "true", "3.0"]
)
def test_malformed_contact_id_is_unexpected(
    sandbox: Sandbox, client: EngageClient, literal: str
) -> None:
    """A contactId that is not a positive 64-bit integer is refused, naming contactId."""
    script(sandbox, LOOKUP, f"contact_id:{literal}")
    with pytest.raises(UnexpectedAnswer, match=r"HTTP 200 \S+ \(contactId "):
        lookup(client)
    assert operations(sandbox) == [LOOKUP]


def test_digit_string_contact_id_is_accepted(sandbox: Sandbox, client: EngageClient) -> None:
    """A contactId written as a string of digits is read as that number."""
    script(sandbox, LOOKUP, 'contact_id:"12"')
    assert lookup(client) == 12


# -- answers cut short -------------------------------------------------------------------------


def test_truncated_lookup_answer_is_unexpected(sandbox: Sandbox, client: EngageClient) -> None:
    """An answer that breaks the JSON or SOAP parser is UnexpectedAnswer on 200."""
    script(sandbox, LOOKUP, "truncated")
    with pytest.raises(UnexpectedAnswer, match=r"body is not JSON|malformed XML"):
        lookup(client)


def test_truncated_send_answer_may_have_been_sent(sandbox: Sandbox, client: EngageClient) -> None:
    """Engage sent, then its answer broke: the error says the message may have been sent."""
    script(sandbox, SEND, "truncated")
    with pytest.raises(UnexpectedAnswer, match="the message may have been sent") as caught:
        send(client)
    assert caught.value.may_have_acted
    assert sandbox.state.sends[(DEMO_MESSAGE, DEMO_CONTACT)] == 1


# -- the fault plan itself ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "step",
    [
        "redirect",
        "redirect:200",
        "html:plain",
        "echo",
        "echo:302",
        "contact_id:",
        "delay:soon",
        "truncated:1",
        "trickle:slowly",
        "oops",
        42.0,
        "retry_after",
        "retry_after:",
        "gzip_bomb",
        "gzip_bomb:99",
        "gzip_bomb:400:big",
        "empty:400",
        "tls_break:1",
        "foreign_ns:x",
        "soap12_fault",
        "soap12_fault:Client",
    ],
)
def test_unknown_or_malformed_steps_are_refused(step: object) -> None:
    """A step the sandbox cannot play is refused when the plan is set, not mid-test."""
    with pytest.raises(ValueError, match="fault step"):
        parse_step(step)


def test_trickle_takes_seconds_per_byte_or_none() -> None:
    """``trickle`` acts, then answers slowly: 2 s a byte unless the step says how slowly."""
    assert [parse_step(s).argument for s in ("trickle", "trickle:0.5")] == ["", "0.5"]
    assert not parse_step("trickle").instead


def test_control_api_refuses_a_bad_plan(sandbox: Sandbox) -> None:
    """POST /_sandbox/faults with a bad step answers 400 and keeps the old plan."""
    answer = requests.post(
        f"{sandbox.root_url}/_sandbox/faults",
        json={"script": {SEND: ["redirect:200"]}},
        timeout=5,
    )
    assert answer.status_code == 400
    assert "3xx" in answer.json()["error"]


def test_retry_after_step_answers_429_with_its_value(sandbox: Sandbox) -> None:
    """``retry_after:0`` is a 429 with ``Retry-After: 0``; ``past`` an HTTP date an hour ago."""
    sandbox.state.set_faults({"script": {SEND: ["retry_after:0", "retry_after:past"]}})
    url = f"{sandbox.base_url}/message/sendSingle?messageId=23541&recipientId=33457"
    auth = ("api@example.com", "sandbox-password")
    first = requests.post(url, json={"parameters": []}, auth=auth, timeout=5)
    second = requests.post(url, json={"parameters": []}, auth=auth, timeout=5)
    assert (first.status_code, first.headers["Retry-After"]) == (429, "0")
    assert second.status_code == 429
    assert second.headers["Retry-After"].endswith("GMT")
    assert sandbox.state.sends == {}
