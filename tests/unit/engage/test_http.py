"""The HTTP edge: transport failures sorted by table, and redirects never followed."""

from __future__ import annotations

import socket

import pytest
import requests
from requests import exceptions as req
from requests.adapters import BaseAdapter
from urllib3.connection import HTTPConnection
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
)

from tasks.core.errors import OutcomeUnknown, RequestNotSent
from tasks.engage import http as engage_http

URL = "http://engage.test/api/rest/v19/message/sendSingle"
TIMEOUT = (2.0, 30.0)
#: What urllib3's connection errors name: a connection object (never opened) and a DNS failure.
CONNECTION = HTTPConnection("engage.test")
NX = socket.gaierror(socket.EAI_NONAME, "Name or service not known")


class RecordingAdapter(BaseAdapter):
    """A transport seam recording each request it is given; :meth:`answer` says what follows."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[requests.PreparedRequest] = []

    def send(  # type: ignore[override]  # the seam ignores stream/timeout/verify options
        self, request: requests.PreparedRequest, **kwargs: object
    ) -> requests.Response:
        """Record the request, then answer it."""
        self.sent.append(request)
        return self.answer(request)

    def answer(self, request: requests.PreparedRequest) -> requests.Response:
        """The response (or the exception raised) for ``request``."""
        raise NotImplementedError

    def close(self) -> None:
        """Nothing to close."""


class FailingAdapter(RecordingAdapter):
    """Every request fails with one exception."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    def answer(self, request: requests.PreparedRequest) -> requests.Response:
        """Fail."""
        raise self.error


class RedirectingAdapter(RecordingAdapter):
    """Every request is answered with a redirect to the login page."""

    def __init__(self, status: int) -> None:
        super().__init__()
        self.status = status

    def answer(self, request: requests.PreparedRequest) -> requests.Response:
        """Redirect to the login page."""
        response = requests.Response()
        response.status_code = self.status
        response._content = b""
        response.headers["Location"] = "http://engage.test/login"
        response.request = request
        response.url = str(request.url)
        return response


def session_with(adapter: BaseAdapter) -> requests.Session:
    """A session whose http:// requests go through ``adapter``."""
    session = requests.Session()
    session.mount("http://", adapter)
    return session


def wrapped(cause: Exception) -> req.ConnectionError:
    """A ConnectionError as requests raises it: urllib3's MaxRetryError around the cause."""
    return req.ConnectionError(MaxRetryError(None, URL, cause))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("error", "expected", "text"),
    [
        (req.ConnectTimeout("slow"), RequestNotSent, "connect timed out after 2 s"),
        (req.SSLError("bad certificate"), RequestNotSent, "TLS handshake failed: bad certificate"),
        (req.ReadTimeout("slow"), OutcomeUnknown, "no answer within 30 s after the request"),
        (wrapped(NewConnectionError(CONNECTION, "refused")), RequestNotSent, "could not connect"),
        (
            wrapped(NameResolutionError("engage.test", CONNECTION, NX)),
            RequestNotSent,
            "could not connect",
        ),
        (wrapped(ConnectTimeoutError("slow")), RequestNotSent, "could not connect"),
        (wrapped(ProtocolError("reset")), OutcomeUnknown, "connection lost after the request"),
        (req.ConnectionError("reset by peer"), OutcomeUnknown, "connection lost after the request"),
    ],
)
def test_post_failures_are_sorted_by_whether_the_request_left(
    error: Exception, expected: type[Exception], text: str
) -> None:
    """A POST that never connected is RequestNotSent; one that may have arrived OutcomeUnknown."""
    session = session_with(FailingAdapter(error))
    with pytest.raises(expected, match=text) as caught:
        engage_http.post(session, URL, "message/sendSingle", timeout=TIMEOUT)
    assert caught.value.__cause__ is error


@pytest.mark.parametrize(
    "error", [req.ReadTimeout("slow"), wrapped(ProtocolError("reset")), req.ChunkedEncodingError()]
)
def test_every_get_failure_is_request_not_sent(error: Exception) -> None:
    """A GET changes nothing, so even a lost answer is safe to retry."""
    session = session_with(FailingAdapter(error))
    with pytest.raises(RequestNotSent, match="request failed"):
        engage_http.get(session, URL, "system/getApiVersion", timeout=TIMEOUT)


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_post_redirect_is_returned_not_followed(status: int) -> None:
    """A redirect is handed back as it came: one request, no follow-up GET or re-POST."""
    adapter = RedirectingAdapter(status)
    response = engage_http.post(
        session_with(adapter), URL, "message/sendSingle", timeout=TIMEOUT, json={}
    )
    assert response.status_code == status
    assert len(adapter.sent) == 1


def test_get_redirect_is_returned_not_followed() -> None:
    """GET does not follow redirects either."""
    adapter = RedirectingAdapter(302)
    response = engage_http.get(session_with(adapter), URL, "system/getApiVersion", timeout=TIMEOUT)
    assert response.status_code == 302
    assert len(adapter.sent) == 1
