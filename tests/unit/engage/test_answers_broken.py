"""The client against answers no code of ours was written for: each ends in a typed error.

A POST whose answer breaks after the request left may have acted (OutcomeUnknown); an answer
that is no HTTP Engage would send is never a success; nothing is followed or read unbounded.
"""

from __future__ import annotations

from typing import TypeVar

import pytest

from tasks.core.errors import (
    EngageClientError,
    EngageError,
    OutcomeUnknown,
    RequestNotSent,
    UnexpectedAnswer,
)
from tasks.core.request import Identifier
from tasks.engage.base import TransportClient
from tasks.engage.http import make_session
from tasks.engage.rest import RestEngageClient
from tasks.engage.soap import SoapEngageClient
from tests.support.raw_server import RawServer

C = TypeVar("C", bound=TransportClient)


def client(kind: type[C], server: RawServer, path: str) -> C:
    """A client of ``kind`` on the raw server's ``path``."""
    base = server.url + path
    return kind(
        base_url=base,
        session=make_session("u", "p", base_url=base),
        connect_timeout=2,
        read_timeout=3,
    )


def rest(server: RawServer) -> RestEngageClient:
    """A REST client on the raw server."""
    return client(RestEngageClient, server, "/api/rest/v19")


def soap(server: RawServer) -> SoapEngageClient:
    """A SOAP client on the raw server."""
    return client(SoapEngageClient, server, "/api/soap/v17")


def head(status: str, *headers: str) -> bytes:
    """A status line and headers."""
    return ("\r\n".join([f"HTTP/1.1 {status}", *headers]) + "\r\n\r\n").encode()


BROKEN_AFTER_SENDING = {
    "body shorter than its Content-Length": head(
        "400 Bad Request", "Content-Type: application/json", "Content-Length: 100"
    )
    + b'{"errorCode":',
    "chunk cut short": head("400 Bad Request", "Transfer-Encoding: chunked")
    + b'40\r\n{"errorCode":',
    "garbage instead of a status line": b"HELLO ENGAGE\r\n\r\n",
    "more than 100 headers": head("204 No Content", *[f"X-{n}: {n}" for n in range(150)]),
    "a header line of 100 kB": head("204 No Content", "X-Big: " + "a" * 100_000),
    "gzip that is not gzip": head(
        "200 OK", "Content-Type: application/json", "Content-Encoding: gzip", "Content-Length: 9"
    )
    + b"not gzip!",
    "nothing at all": b"",
}


@pytest.mark.parametrize("answer", BROKEN_AFTER_SENDING.values(), ids=BROKEN_AFTER_SENDING)
def test_send_whose_answer_breaks_is_outcome_unknown(answer: bytes) -> None:
    """The request left: whatever broke the answer, the send may have happened."""
    with RawServer(answer) as server:
        with pytest.raises(OutcomeUnknown):
            rest(server).send_single(1, 2, [])
        assert server.requests == 1


@pytest.mark.parametrize("answer", BROKEN_AFTER_SENDING.values(), ids=BROKEN_AFTER_SENDING)
def test_soap_send_whose_answer_breaks_is_never_sent(answer: bytes) -> None:
    """SOAP the same: never a success, and a send with a broken answer may have happened."""
    with RawServer(answer) as server, pytest.raises(OutcomeUnknown):
        soap(server).send_single(1, 2, [])


def test_redirect_loop_is_not_followed() -> None:
    """A 302 to itself is one call and an unexpected answer, not a loop until some limit."""
    with RawServer(b"") as server:
        server.answer = head(
            "302 Found",
            f"Location: {server.url}/api/rest/v19/message/sendSingle",
            "Content-Length: 0",
        )
        with pytest.raises(UnexpectedAnswer, match="redirect"):
            rest(server).send_single(1, 2, [])
        assert server.requests == 1


def test_endless_body_without_length_is_cut_at_the_limit() -> None:
    """A close-delimited 400 body of 3 MB: classified by its status, read no further than 1 MiB."""
    answer = head("400 Bad Request", "Content-Type: text/plain", "Connection: close") + b"x" * (
        3 << 20
    )
    with RawServer(answer) as server, pytest.raises(EngageClientError, match="larger than 1 MiB"):
        rest(server).send_single(1, 2, [])


def test_html_page_with_a_success_status_to_a_lookup_is_no_contact() -> None:
    """A 200 HTML page without a Content-Type: recognised by its start, never a contact."""
    page = b"<!DOCTYPE html><html><title>Portal</title></html>"
    answer = head("200 OK", f"Content-Length: {len(page)}") + page
    with RawServer(answer) as server, pytest.raises(UnexpectedAnswer, match="HTML page"):
        rest(server).get_contact(Identifier("MOBILE", "48505606707"))


def test_204_with_a_body_is_not_trusted_beyond_its_status() -> None:
    """A 204 carries no body by definition: the stray bytes do not turn it into an error."""
    answer = head("204 No Content") + b'{"surprise": true}'
    with RawServer(answer) as server:
        rest(server).send_single(1, 2, [])  # raises on anything but success
        assert server.requests == 1


@pytest.mark.parametrize("answer", BROKEN_AFTER_SENDING.values(), ids=BROKEN_AFTER_SENDING)
def test_version_check_whose_answer_breaks_is_safe_to_retry(answer: bytes) -> None:
    """GET system/getApiVersion changes nothing: any broken answer is 'not sent', retryable."""
    with RawServer(answer) as server, pytest.raises((RequestNotSent, UnexpectedAnswer)) as caught:
        rest(server).api_version()
    assert isinstance(caught.value, EngageError)
