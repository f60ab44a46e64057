"""The SOAP transport: envelopes, fault parsing, and calls against the real sandbox on loopback."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import requests
from defusedxml.ElementTree import fromstring as safe_fromstring

from tasks.core.errors import (
    CredentialsRejected,
    EngageClientError,
    EngageServerError,
    InvalidSendRequest,
    OutcomeUnknown,
    RateLimited,
    RequestNotSent,
    UnexpectedAnswer,
    UnknownRecipient,
)
from tasks.core.request import Identifier
from tasks.engage import http as engage_http
from tasks.engage.soap import SoapEngageClient, fault_status
from tasks.engage.soap_envelope import (
    NAMESPACE,
    SOAP_ENV_NAMESPACE,
    UnreadableAnswer,
    build_envelope,
    contact_from_answer,
    contact_get_envelope,
    parse_fault,
    read_envelope,
    send_single_envelope,
)
from tasks.sandbox import Sandbox
from tasks.sandbox.soap import fault_envelope
from tests.support.raw_server import RawServer

USER, PASSWORD = "api@example.com", "sandbox-password"
DEMO_MOBILE, DEMO_CONTACT, DEMO_MESSAGE = "48505606707", 33457, 23541
SPECIAL = "<&>\"'"

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
  <!ENTITY lol "lol">
  <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body>
<ns2:contactGetResponse xmlns:ns2="http://ecircle.com/developer/ecmapi">
<return><id>1</id><identifier>&lol4;</identifier></return>
</ns2:contactGetResponse></S:Body></S:Envelope>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body>
<ns2:contactGetResponse xmlns:ns2="http://ecircle.com/developer/ecmapi">
<return><id>1</id><identifier>&xxe;</identifier></return>
</ns2:contactGetResponse></S:Body></S:Envelope>"""

HTML_502 = b"""<!DOCTYPE html>
<html><head><title>502 Bad Gateway</title></head>
<body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>"""

Stub = Callable[[int, bytes], str]


def make_client(endpoint: str, auth: tuple[str, str] | None = (USER, PASSWORD)) -> SoapEngageClient:
    """A SOAP client with short timeouts; ``auth=None`` sends no credentials."""
    session = engage_http.make_session(*auth, base_url=endpoint) if auth else requests.Session()
    return SoapEngageClient(
        base_url=endpoint, session=session, connect_timeout=2.0, read_timeout=5.0
    )


@pytest.fixture
def client(sandbox: Sandbox) -> SoapEngageClient:
    """A client on the sandbox's SOAP endpoint with the right credentials."""
    return make_client(sandbox.soap_url)


@pytest.fixture
def stub() -> Iterator[Stub]:
    """Start tiny servers that answer every POST with a fixed status and body."""
    servers: list[HTTPServer] = []

    def start(status: int, body: bytes) -> str:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(status)
                self.send_header("Content-Type", "text/xml; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                """Keep test output quiet."""

        server = HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}/api/soap/v17"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


# -- envelopes and faults as pure functions ----------------------------------------------------


def test_contact_get_envelope_names_the_identifier_in_engages_namespace() -> None:
    """contactGet is an ecmapi element in a SOAP 1.1 Body holding identifier{type,value}."""
    root = safe_fromstring(contact_get_envelope(Identifier("MOBILE", DEMO_MOBILE)))
    operation = root.find(f"{{{SOAP_ENV_NAMESPACE}}}Body/{{{NAMESPACE}}}contactGet")
    assert operation is not None
    assert operation.findtext("identifier/type") == "MOBILE"
    assert operation.findtext("identifier/value") == DEMO_MOBILE


def test_send_single_envelope_carries_ids_and_parameters_in_order() -> None:
    """messageSendSingle holds messageId, recipientId and one parameters element per pair."""
    envelope = send_single_envelope(DEMO_MESSAGE, DEMO_CONTACT, [("b", "2"), ("a", "1")])
    operation = safe_fromstring(envelope)[1][0]
    assert operation.findtext("messageId") == str(DEMO_MESSAGE)
    assert operation.findtext("recipientId") == str(DEMO_CONTACT)
    params = operation.findall("additionalContent/parameters")
    assert [(p.findtext("name"), p.findtext("value")) for p in params] == [("b", "2"), ("a", "1")]


def test_envelope_escapes_markup_in_values() -> None:
    """Markup characters in a value are escaped, and read back unchanged."""
    envelope = send_single_envelope(1, 2, [("name", SPECIAL)])
    assert b"&lt;&amp;&gt;" in envelope
    value = safe_fromstring(envelope).find(".//additionalContent/parameters/value")
    assert value is not None
    assert value.text == SPECIAL


def test_envelope_keeps_carriage_returns() -> None:
    """A CR in a value survives the receiver's line-end normalisation."""
    value = safe_fromstring(send_single_envelope(1, 2, [("n", "a\r\nb")])).find(".//value")
    assert value is not None
    assert value.text == "a\r\nb"


def test_envelope_refuses_characters_xml_cannot_carry() -> None:
    """A control character in a value is an invalid request, not a broken envelope."""
    with pytest.raises(InvalidSendRequest, match=r"U\+0001"):
        build_envelope("messageSendSingle", [("value", "a\x01b")])


def test_parse_fault_reads_engages_detail_fields() -> None:
    """The detail's typed element gives errorActor, errorCode, message and the extra fields."""
    fields = {
        "errorActor": "CLIENT",
        "errorCode": "NO_SUCH_OBJECT",
        "message": "Contact with identifier=x does not exist.",
        "objectType": "Contact",
        "propertyName": "identifier",
        "propertyValue": "x",
    }
    fault = parse_fault(read_envelope(fault_envelope(fields)))
    assert fault is not None
    assert fault.fields == fields
    assert fault.code.endswith(":Client")


def test_parse_fault_takes_the_actor_from_the_faultcode_without_detail() -> None:
    """A bare soap:Client fault counts as a CLIENT error."""
    envelope = (
        f'<soap:Envelope xmlns:soap="{SOAP_ENV_NAMESPACE}"><soap:Body><soap:Fault>'
        "<faultcode>soap:Client</faultcode><faultstring>Cannot find dispatch method</faultstring>"
        "</soap:Fault></soap:Body></soap:Envelope>"
    ).encode()
    fault = parse_fault(read_envelope(envelope))
    assert fault is not None
    assert (fault.actor, fault.string) == ("CLIENT", "Cannot find dispatch method")


def test_parse_fault_ignores_ordinary_answers() -> None:
    """An operation's answer is not a fault."""
    answer = b'<S:Envelope xmlns:S="%s"><S:Body><r/></S:Body></S:Envelope>'
    assert parse_fault(read_envelope(answer % SOAP_ENV_NAMESPACE.encode())) is None


@pytest.mark.parametrize(
    ("http_status", "actor", "expected"),
    [
        (500, "CLIENT", 400),
        (500, "SERVER", 500),
        (500, None, 500),
        (200, "CLIENT", 400),
        (403, "CLIENT", 403),
        (401, None, 401),
        (429, "SERVER", 429),
        (503, "SERVER", 503),
    ],
)
def test_fault_status_classifies_client_faults_as_rest_would(
    http_status: int, actor: str | None, expected: int
) -> None:
    """SOAP's blanket 500 becomes 400 for CLIENT faults; telling statuses are kept."""
    assert fault_status(http_status, actor) == expected


def test_contact_answer_accepts_contact_id() -> None:
    """``<return><contactId>`` is read like ``<return><id>``."""
    answer = (
        f'<S:Envelope xmlns:S="{SOAP_ENV_NAMESPACE}"><S:Body>'
        f'<x:contactGetResponse xmlns:x="{NAMESPACE}"><return><contactId>77</contactId></return>'
        "</x:contactGetResponse></S:Body></S:Envelope>"
    ).encode()
    assert contact_from_answer(read_envelope(answer)).contact_id == 77


def test_read_envelope_refuses_entity_expansion() -> None:
    """A billion-laughs document is refused before any entity is expanded."""
    with pytest.raises(UnreadableAnswer, match="unsafe XML refused") as info:
        read_envelope(BILLION_LAUGHS)
    assert "lollol" not in str(info.value)


# -- against the sandbox -----------------------------------------------------------------------


@pytest.mark.parametrize("id_type", ["MOBILE", "EMAIL", "APP_ALIAS", "EXTERNAL"])
def test_lookup_by_each_identifier_type(
    sandbox: Sandbox, client: SoapEngageClient, id_type: str
) -> None:
    """contactGet finds a contact by every identifier type."""
    value = {"MOBILE": "48600700800", "EMAIL": "a@example.com"}.get(id_type, "ref-42")
    sandbox.state.add_contacts([{"type": id_type, "value": value, "contactId": 4242}])
    assert client.get_contact(Identifier(id_type, value)).contact_id == 4242


def test_lookup_sends_the_identifier(sandbox: Sandbox, client: SoapEngageClient) -> None:
    """The sandbox receives the identifier's type and value."""
    assert client.get_contact(Identifier("MOBILE", DEMO_MOBILE)).contact_id == DEMO_CONTACT
    (call,) = sandbox.state.calls_to("contact/get")
    assert call.body == {"type": "MOBILE", "value": DEMO_MOBILE}


def test_id_identifier_needs_no_call(sandbox: Sandbox, client: SoapEngageClient) -> None:
    """An ID identifier is the contact id: nothing is asked."""
    assert client.get_contact(Identifier("ID", "981")).contact_id == 981
    assert sandbox.state.calls == []


def test_send_passes_ids_and_parameters(sandbox: Sandbox, client: SoapEngageClient) -> None:
    """messageSendSingle delivers the ids and the parameters the message needs."""
    sandbox.state.add_messages([{"messageId": 7, "requiredParameters": ["code"]}])
    client.send_single(7, DEMO_CONTACT, [("code", "1234"), ("name", "Ala")])
    (call,) = sandbox.state.calls_to("message/sendSingle")
    assert call.query == {"messageId": "7", "recipientId": str(DEMO_CONTACT)}
    assert call.body == {
        "parameters": [{"name": "code", "value": "1234"}, {"name": "name", "value": "Ala"}]
    }
    assert sandbox.state.sends[(7, DEMO_CONTACT)] == 1


def test_send_escapes_parameter_values(sandbox: Sandbox, client: SoapEngageClient) -> None:
    """A value full of XML markup arrives exactly as given."""
    client.send_single(DEMO_MESSAGE, DEMO_CONTACT, [("text", SPECIAL)])
    (call,) = sandbox.state.calls_to("message/sendSingle")
    assert call.body == {"parameters": [{"name": "text", "value": SPECIAL}]}


def test_unknown_contact_is_unknown_recipient(client: SoapEngageClient) -> None:
    """A CLIENT NO_SUCH_OBJECT fault about a Contact is UnknownRecipient, as on REST."""
    with pytest.raises(UnknownRecipient) as info:
        client.get_contact(Identifier("MOBILE", "48999888777"))
    assert (info.value.status, info.value.error_code) == (400, "NO_SUCH_OBJECT")
    assert info.value.details["objectType"] == "Contact"


def test_unknown_message_is_a_client_error(client: SoapEngageClient) -> None:
    """NO_SUCH_OBJECT about a Message is an EngageClientError, not an unknown recipient."""
    with pytest.raises(EngageClientError) as info:
        client.send_single(999, DEMO_CONTACT, [])
    assert not isinstance(info.value, UnknownRecipient)
    assert info.value.error_code == "NO_SUCH_OBJECT"
    assert info.value.details["objectType"] == "Message"


def test_missing_parameter_names_it(sandbox: Sandbox, client: SoapEngageClient) -> None:
    """A MISSING_PARAMETER fault keeps the parameter's name."""
    sandbox.state.add_messages([{"messageId": 8, "requiredParameters": ["code"]}])
    with pytest.raises(EngageClientError) as info:
        client.send_single(8, DEMO_CONTACT, [])
    assert info.value.error_code == "MISSING_PARAMETER"
    assert info.value.details["parameterName"] == "code"


def test_wrong_password_is_credentials_rejected(sandbox: Sandbox) -> None:
    """A wrong password answers 403: CredentialsRejected."""
    with pytest.raises(CredentialsRejected) as info:
        make_client(sandbox.soap_url, (USER, "wrong")).get_contact(Identifier("MOBILE", "1"))
    assert info.value.status == 403


def test_missing_credentials_are_rejected(sandbox: Sandbox) -> None:
    """No Authorization header answers 401: CredentialsRejected."""
    with pytest.raises(CredentialsRejected) as info:
        make_client(sandbox.soap_url, None).api_version()
    assert info.value.status == 401


def test_503_is_a_server_error(sandbox: Sandbox, client: SoapEngageClient) -> None:
    """An injected 503 is an EngageServerError and nothing is sent."""
    sandbox.state.set_faults({"script": {"message/sendSingle": [503]}})
    with pytest.raises(EngageServerError) as info:
        client.send_single(DEMO_MESSAGE, DEMO_CONTACT, [])
    assert info.value.status == 503
    assert not sandbox.state.sends


def test_429_is_rate_limited_with_retry_after(sandbox: Sandbox, client: SoapEngageClient) -> None:
    """An injected 429 is RateLimited and carries Retry-After."""
    sandbox.state.set_faults({"script": {"contact/get": [429]}})
    with pytest.raises(RateLimited) as info:
        client.get_contact(Identifier("MOBILE", DEMO_MOBILE))
    assert info.value.retry_after == 1.0


def test_drop_after_is_outcome_unknown(sandbox: Sandbox, client: SoapEngageClient) -> None:
    """A connection lost after Engage acted is OutcomeUnknown, and the send did happen."""
    sandbox.state.set_faults({"script": {"message/sendSingle": ["drop_after"]}})
    with pytest.raises(OutcomeUnknown):
        client.send_single(DEMO_MESSAGE, DEMO_CONTACT, [])
    assert sandbox.state.sends[(DEMO_MESSAGE, DEMO_CONTACT)] == 1


def test_refused_connection_is_request_not_sent() -> None:
    """Nobody listening: RequestNotSent, as on REST."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(RequestNotSent):
        make_client(f"http://127.0.0.1:{port}/api/soap/v17").send_single(1, 2, [])


def test_api_version(client: SoapEngageClient) -> None:
    """systemGetApiVersion returns the sandbox's version string."""
    assert client.api_version() == "19.0"


# -- hostile and broken answers ----------------------------------------------------------------


@pytest.mark.parametrize("document", [BILLION_LAUGHS, EXTERNAL_ENTITY], ids=["laughs", "xxe"])
def test_hostile_answer_is_refused_unexpanded(stub: Stub, document: bytes) -> None:
    """A DTD with entities is refused as a typed error; nothing is expanded or fetched."""
    with pytest.raises(UnexpectedAnswer, match="unsafe XML refused") as info:
        make_client(stub(200, document)).get_contact(Identifier("MOBILE", DEMO_MOBILE))
    assert "lollol" not in str(info.value)
    assert "root:" not in str(info.value)


def test_hostile_fault_is_classified_by_status(stub: Stub) -> None:
    """A hostile document on a 500 is an EngageServerError saying why it was refused."""
    with pytest.raises(EngageServerError, match="unsafe XML refused") as info:
        make_client(stub(500, BILLION_LAUGHS)).send_single(1, 2, [])
    assert info.value.status == 500


def test_html_502_page_is_a_readable_server_error(stub: Stub) -> None:
    """A proxy's HTML 502 page gives its text, not markup or a parser traceback."""
    with pytest.raises(EngageServerError) as info:
        make_client(stub(502, HTML_502)).send_single(1, 2, [])
    assert info.value.status == 502
    assert "502 Bad Gateway" in str(info.value)
    assert "<html" not in str(info.value)


def test_empty_error_answer_is_a_server_error(stub: Stub) -> None:
    """An empty 500 answer says so."""
    with pytest.raises(EngageServerError, match="empty answer"):
        make_client(stub(500, b"")).get_contact(Identifier("MOBILE", DEMO_MOBILE))


def test_malformed_xml_is_a_server_error(stub: Stub) -> None:
    """Broken XML on an error status is an EngageServerError naming the problem."""
    with pytest.raises(EngageServerError, match="malformed XML"):
        make_client(stub(500, b"<S:Envelope><oops")).api_version()


def test_empty_success_answer_to_lookup_is_unexpected(stub: Stub) -> None:
    """A 200 without a contact cannot be trusted: UnexpectedAnswer."""
    with pytest.raises(UnexpectedAnswer, match="empty answer") as info:
        make_client(stub(200, b"")).get_contact(Identifier("MOBILE", DEMO_MOBILE))
    assert info.value.status == 200


def test_empty_204_to_send_is_success() -> None:
    """An empty 204 to a send is the documented answer: accepted, as on REST."""
    with RawServer(b"HTTP/1.1 204 No Content\r\n\r\n") as server:
        make_client(server.url + "/api/soap/v17").send_single(1, 2, [])  # raises on anything else
        (body,) = server.bodies
    assert b"messageSendSingle" in body


@pytest.mark.parametrize("status", [200, 201, 202])
def test_empty_other_2xx_to_send_is_unexpected(stub: Stub, status: int) -> None:
    """An empty 2xx other than the documented 204 is not success (REST refuses it too)."""
    with pytest.raises(UnexpectedAnswer, match=f"HTTP {status}") as info:
        make_client(stub(status, b"")).send_single(1, 2, [])
    assert info.value.may_have_acted


def test_unreadable_success_answer_to_send_may_have_been_sent(stub: Stub) -> None:
    """A 200 whose body cannot be read may hide a sent message: it says so."""
    with pytest.raises(UnexpectedAnswer, match="may have been sent") as info:
        make_client(stub(200, b"<not-soap")).send_single(1, 2, [])
    assert info.value.may_have_acted


def test_other_operations_answer_to_send_is_not_success(stub: Stub) -> None:
    """A readable envelope is success only when it is messageSendSingle's own answer."""
    other = (
        f'<S:Envelope xmlns:S="{SOAP_ENV_NAMESPACE}"><S:Body>'
        f'<x:contactGetResponse xmlns:x="{NAMESPACE}"><return><id>1</id></return>'
        "</x:contactGetResponse></S:Body></S:Envelope>"
    ).encode()
    with pytest.raises(UnexpectedAnswer, match="<contactGetResponse> answered"):
        make_client(stub(200, other)).send_single(1, 2, [])


def test_soap_answer_with_202_is_not_success(stub: Stub) -> None:
    """The operation's answer counts only with 200 OK, as a JAX-WS endpoint sends it."""
    answer = (
        f'<S:Envelope xmlns:S="{SOAP_ENV_NAMESPACE}"><S:Body>'
        f'<x:messageSendSingleResponse xmlns:x="{NAMESPACE}"/></S:Body></S:Envelope>'
    ).encode()
    with pytest.raises(UnexpectedAnswer, match="not with 200 OK"):
        make_client(stub(202, answer)).send_single(1, 2, [])


# -- the sandbox's own SOAP edges --------------------------------------------------------------


def test_sandbox_answers_an_unreadable_request_with_a_client_fault(sandbox: Sandbox) -> None:
    """A non-XML POST gets a CLIENT INVALID_REQUEST fault over HTTP 500."""
    response = requests.post(sandbox.soap_url, data=b"not xml", auth=(USER, PASSWORD), timeout=5)
    fault = parse_fault(read_envelope(response.content))
    assert response.status_code == 500
    assert fault is not None
    assert (fault.actor, fault.fields["errorCode"]) == ("CLIENT", "INVALID_REQUEST")


def test_sandbox_refuses_a_dtd_in_a_request(sandbox: Sandbox) -> None:
    """The sandbox does not expand entities either: the request is unreadable."""
    requests.post(sandbox.soap_url, data=BILLION_LAUGHS, auth=(USER, PASSWORD), timeout=5)
    (call,) = sandbox.state.calls
    assert call.operation == "soap/unreadable"
    assert call.status == 500
