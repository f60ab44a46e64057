"""The REST client against the sandbox: exact requests, and every answer mapped to a typed error."""

from __future__ import annotations

import base64
import socket

import pytest
import requests
from requests.adapters import BaseAdapter

from tasks.core.errors import (
    CredentialsRejected,
    EngageClientError,
    EngageServerError,
    OutcomeUnknown,
    RateLimited,
    RequestNotSent,
    UnexpectedAnswer,
    UnknownRecipient,
)
from tasks.core.request import Identifier
from tasks.engage.http import make_session
from tasks.engage.rest import RestEngageClient
from tasks.sandbox import Sandbox

#: The sandbox's default API user.
SANDBOX_USER, SANDBOX_PASSWORD = "api@example.com", "sandbox-password"


def client_for(
    base_url: str, *, password: str = SANDBOX_PASSWORD, read: float = 1.0
) -> RestEngageClient:
    """A client with short timeouts."""
    return RestEngageClient(
        base_url=base_url,
        session=make_session(SANDBOX_USER, password, base_url=base_url),
        connect_timeout=1.0,
        read_timeout=read,
    )


@pytest.mark.parametrize("id_type", ["MOBILE", "EMAIL", "APP_ALIAS", "EXTERNAL"])
def test_lookup_posts_type_and_value(sandbox: Sandbox, id_type: str) -> None:
    """contact/get receives exactly {"type", "value"} and the contactId comes back."""
    sandbox.state.add_contacts([{"type": id_type, "value": "v-1", "contactId": 77}])
    contact = client_for(sandbox.base_url).get_contact(Identifier(id_type, "v-1"))
    assert contact.contact_id == 77
    (call,) = sandbox.state.calls_to("contact/get")
    assert call.body == {"type": id_type, "value": "v-1"}
    assert call.path == "/api/rest/v19/contact/get"


def test_lookup_sends_basic_credentials(sandbox: Sandbox) -> None:
    """Every call carries the API user's Basic credentials."""
    client_for(sandbox.base_url).get_contact(Identifier("MOBILE", "48505606707"))
    assert sandbox.state.calls[0].authorized


def test_known_contact_id_skips_the_lookup(sandbox: Sandbox) -> None:
    """An ID identifier is used as it is, without calling Engage."""
    contact = client_for(sandbox.base_url).get_contact(Identifier("ID", "33457"))
    assert contact.contact_id == 33457
    assert sandbox.state.calls == []


def test_send_posts_ids_in_query_and_parameters_in_body(sandbox: Sandbox) -> None:
    """message/sendSingle gets messageId/recipientId as query and the parameters as a list."""
    client_for(sandbox.base_url).send_single(23541, 33457, [("firstName", "Ann"), ("x", "<&>")])
    (call,) = sandbox.state.calls_to("message/sendSingle")
    assert call.query == {"messageId": "23541", "recipientId": "33457"}
    assert call.body == {
        "parameters": [{"name": "firstName", "value": "Ann"}, {"name": "x", "value": "<&>"}]
    }
    assert call.status == 204
    assert sandbox.state.sends[(23541, 33457)] == 1


def test_unknown_contact_is_unknown_recipient(sandbox: Sandbox) -> None:
    """400 NO_SUCH_OBJECT on lookup carries Engage's body."""
    with pytest.raises(UnknownRecipient) as caught:
        client_for(sandbox.base_url).get_contact(Identifier("MOBILE", "48600000001"))
    err = caught.value
    assert (err.status, err.error_code, err.error_actor) == (400, "NO_SUCH_OBJECT", "CLIENT")
    assert err.details["objectType"] == "Contact"


def test_unknown_message_is_a_client_error_not_unknown_recipient(sandbox: Sandbox) -> None:
    """NO_SUCH_OBJECT about the Message is a permanent client error."""
    with pytest.raises(EngageClientError) as caught:
        client_for(sandbox.base_url).send_single(999, 33457, [])
    assert not isinstance(caught.value, UnknownRecipient)
    assert caught.value.details["objectType"] == "Message"


def test_missing_parameter_carries_its_name(sandbox: Sandbox) -> None:
    """MISSING_PARAMETER keeps parameterName in the details."""
    sandbox.state.add_messages([{"messageId": 5, "requiredParameters": ["code"]}])
    with pytest.raises(EngageClientError) as caught:
        client_for(sandbox.base_url).send_single(5, 33457, [])
    assert caught.value.error_code == "MISSING_PARAMETER"
    assert caught.value.details["parameterName"] == "code"


def test_wrong_password_is_credentials_rejected(sandbox: Sandbox) -> None:
    """403 means the credentials are wrong."""
    with pytest.raises(CredentialsRejected) as caught:
        client_for(sandbox.base_url, password="wrong").get_contact(Identifier("MOBILE", "1"))
    assert caught.value.status == 403


def test_missing_credentials_are_401(sandbox: Sandbox) -> None:
    """No Authorization header gets 401, also a credentials error."""
    session = requests.Session()
    client = RestEngageClient(
        base_url=sandbox.base_url, session=session, connect_timeout=1, read_timeout=1
    )
    with pytest.raises(CredentialsRejected) as caught:
        client.get_contact(Identifier("MOBILE", "48505606707"))
    assert caught.value.status == 401


def test_wrong_path_prefix_is_404_client_error(sandbox: Sandbox) -> None:
    """An unknown path answers 404 INVALID_REQUEST."""
    with pytest.raises(EngageClientError) as caught:
        client_for(sandbox.root_url + "/api/rest/v99").send_single(23541, 33457, [])
    assert (caught.value.status, caught.value.error_code) == (404, "INVALID_REQUEST")


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_is_server_error(sandbox: Sandbox, status: int) -> None:
    """Every 5xx is a server error with Engage's message."""
    sandbox.state.set_faults({"script": {"message/sendSingle": [status]}})
    with pytest.raises(EngageServerError) as caught:
        client_for(sandbox.base_url).send_single(23541, 33457, [])
    assert caught.value.status == status
    assert sandbox.state.sends[(23541, 33457)] == 0


def test_database_limit_message_is_kept(sandbox: Sandbox) -> None:
    """500 "Database Access Limit Exceeded" keeps its text for operators."""
    sandbox.state.set_faults({"script": {"contact/get": [500]}})
    with pytest.raises(EngageServerError, match="Database Access Limit Exceeded"):
        client_for(sandbox.base_url).get_contact(Identifier("MOBILE", "48505606707"))


def test_429_carries_retry_after(sandbox: Sandbox) -> None:
    """429 is RateLimited with the Retry-After seconds."""
    sandbox.state.set_faults({"script": {"contact/get": [429]}})
    with pytest.raises(RateLimited) as caught:
        client_for(sandbox.base_url).get_contact(Identifier("MOBILE", "48505606707"))
    assert caught.value.retry_after == 1.0


def test_dropped_connection_after_send_is_outcome_unknown(sandbox: Sandbox) -> None:
    """The sandbox sent the SMS and hung up: the client must say it may have been sent."""
    sandbox.state.set_faults({"script": {"message/sendSingle": ["drop_after"]}})
    with pytest.raises(OutcomeUnknown):
        client_for(sandbox.base_url).send_single(23541, 33457, [])
    assert sandbox.state.sends[(23541, 33457)] == 1


def test_read_timeout_is_outcome_unknown(sandbox: Sandbox) -> None:
    """No answer within the read timeout after the request left: outcome unknown."""
    sandbox.state.set_faults({"script": {"message/sendSingle": ["delay:0.6"]}})
    with pytest.raises(OutcomeUnknown, match=r"no answer within 0\.3 s"):
        client_for(sandbox.base_url, read=0.3).send_single(23541, 33457, [])


def test_refused_connection_is_request_not_sent() -> None:
    """Nothing listening: the request never left, so it is safe to retry."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(RequestNotSent, match="could not connect"):
        client_for(f"http://127.0.0.1:{port}/api").send_single(1, 2, [])


def test_api_version_is_read(sandbox: Sandbox) -> None:
    """system/getApiVersion returns the version string."""
    assert client_for(sandbox.base_url).api_version() == "19.0"


class CannedAdapter(BaseAdapter):
    """A transport seam answering every request with one canned response."""

    def __init__(self, status: int, body: bytes, content_type: str) -> None:
        super().__init__()
        self.status, self.body, self.content_type = status, body, content_type

    def send(  # type: ignore[override]  # the seam ignores stream/timeout/verify options
        self, request: requests.PreparedRequest, **kwargs: object
    ) -> requests.Response:
        """Answer with the canned response."""
        response = requests.Response()
        response.status_code = self.status
        response._content = self.body
        response.headers["Content-Type"] = self.content_type
        response.request = request
        response.url = str(request.url)
        return response

    def close(self) -> None:
        """Nothing to close."""


def canned_client(status: int, body: bytes, content_type: str = "text/html") -> RestEngageClient:
    """A client whose every call gets the canned answer."""
    session = requests.Session()
    session.mount("http://", CannedAdapter(status, body, content_type))
    return RestEngageClient(
        base_url="http://engage.test/api", session=session, connect_timeout=1, read_timeout=1
    )


def test_html_error_page_gives_a_readable_error() -> None:
    """A proxy's HTML 502 page becomes a server error quoting the page, not a JSON traceback."""
    client = canned_client(502, b"<html><body><h1>502 Bad Gateway</h1></body></html>")
    with pytest.raises(
        EngageServerError, match=r"non-JSON answer: <html><body><h1>502 Bad Gateway"
    ):
        client.send_single(1, 2, [])


def test_empty_error_body_is_described() -> None:
    """An empty 503 says so."""
    with pytest.raises(EngageServerError, match="empty 503 answer"):
        canned_client(503, b"").send_single(1, 2, [])


def test_unknown_error_code_is_kept_not_crashing() -> None:
    """A newer errorCode is carried through as a client error."""
    body = b'{"errorActor":"CLIENT","errorCode":"BRAND_NEW_CODE","message":"new"}'
    with pytest.raises(EngageClientError) as caught:
        canned_client(400, body, "application/json").send_single(1, 2, [])
    assert caught.value.error_code == "BRAND_NEW_CODE"


def test_lookup_answer_without_contact_id_is_an_error() -> None:
    """200 without contactId cannot be used to send: an unexpected answer."""
    with pytest.raises(UnexpectedAnswer, match="no contactId"):
        canned_client(200, b'{"email": "x"}', "application/json").get_contact(
            Identifier("MOBILE", "48505606707")
        )


def test_retry_after_on_503_is_honoured_in_the_error() -> None:
    """Retry-After on any status is carried (the retry policy waits as told)."""
    session = requests.Session()
    adapter = CannedAdapter(503, b"", "text/plain")
    original = adapter.send

    def send(request: requests.PreparedRequest, **kwargs: object) -> requests.Response:
        response = original(request)
        response.headers["Retry-After"] = "7"
        return response

    adapter.send = send  # type: ignore[method-assign]
    session.mount("http://", adapter)
    client = RestEngageClient(
        base_url="http://engage.test/api", session=session, connect_timeout=1, read_timeout=1
    )
    with pytest.raises(EngageServerError) as caught:
        client.send_single(1, 2, [])
    assert caught.value.retry_after == 7.0


def test_basic_auth_header_is_the_configured_user(sandbox: Sandbox) -> None:
    """The header decodes to user:password (and the password is never in an error)."""
    session = make_session(SANDBOX_USER, "wrong-secret", base_url=sandbox.base_url)
    prepared = session.prepare_request(requests.Request("POST", sandbox.base_url))
    header = prepared.headers["Authorization"]
    assert base64.b64decode(header.split()[1]).decode() == f"{SANDBOX_USER}:wrong-secret"
    with pytest.raises(CredentialsRejected) as caught:
        RestEngageClient(
            base_url=sandbox.base_url, session=session, connect_timeout=1, read_timeout=1
        ).send_single(23541, 33457, [])
    assert "wrong-secret" not in str(caught.value)


def test_proxy_and_ca_bundle_come_from_the_environment_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The session takes HTTPS_PROXY and REQUESTS_CA_BUNDLE at creation, then ignores env."""
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/tenant-ca.pem")
    session = make_session("u", "p", base_url="https://tenant.example/api/rest/v19")
    assert session.proxies["https"] == "http://proxy.internal:3128"
    assert session.verify == "/etc/ssl/tenant-ca.pem"
    assert session.trust_env is False


def test_no_proxy_keeps_the_engage_host_direct(monkeypatch: pytest.MonkeyPatch) -> None:
    """A host listed in NO_PROXY gets no proxy, as requests would decide per call."""
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "tenant.example")
    session = make_session("u", "p", base_url="https://tenant.example/api/rest/v19")
    assert "https" not in session.proxies
