"""The sandbox's SOAP 1.1 endpoint: the REST operations, auth and faults, wrapped in envelopes.

Operations are recorded under the REST names (``contactGet`` -> ``contact/get``,
``messageSendSingle`` -> ``message/sendSingle``, ``systemGetApiVersion`` ->
``system/getApiVersion``), so tests assert the same things on both transports.
Errors are SOAP faults (HTTP 500, or the injected status) whose detail carries Engage's fields.
Credentials and scripted faults go through :func:`tasks.sandbox.gate.admit`, as on REST.
"""

from __future__ import annotations

import functools
import json
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from defusedxml.ElementTree import fromstring as _safe_fromstring

from tasks.engage.soap_envelope import NAMESPACE, SOAP_ENV_NAMESPACE
from tasks.sandbox import gate
from tasks.sandbox.faults import CONTACT_ID, EMPTY, FOREIGN_NS, SOAP12_FAULT, TRUNCATED, Fault
from tasks.sandbox.gate import API_VERSION, Exchange, error_body
from tasks.sandbox.state import Answer, Call, SandboxState, now

#: SOAP operation element -> the operation name shared with REST.
OPERATIONS = {
    "contactGet": "contact/get",
    "messageSendSingle": "message/sendSingle",
    "systemGetApiVersion": "system/getApiVersion",
    "contactCreate": "contact/create",
}
#: Recorded operation for a request whose operation cannot be read.
UNREADABLE = "soap/unreadable"

_CONTENT_TYPE = "text/xml; charset=utf-8"
_SOAP12_TYPE = "application/soap+xml; charset=utf-8"
#: SOAP 1.2 envelope namespace.
SOAP12_NAMESPACE = "http://www.w3.org/2003/05/soap-envelope"
#: The namespace a ``foreign_ns`` answer is written in: some other service's.
FOREIGN_NAMESPACE = "http://example.com/not-engage"


@dataclass
class SoapRequest:
    """A SOAP request as the state sees it; ``problem`` says why it cannot be run."""

    operation: str
    query: dict[str, str] = field(default_factory=dict)
    body: Any = None
    problem: str | None = None


def parse_request(raw: bytes) -> SoapRequest:
    """Read an envelope into the JSON-friendly form REST calls are recorded in."""
    try:
        # Like Engage, refuse DTDs: no entity expansion, no external entities.
        root = _safe_fromstring(raw, forbid_dtd=True)
    except (ET.ParseError, ValueError) as err:
        text = raw.decode("utf-8", errors="replace")
        return SoapRequest(UNREADABLE, body=text, problem=f"Unreadable SOAP request: {err}")
    body = _child(root, "Body") if _local(root.tag) == "Envelope" else None
    element = body[0] if body is not None and len(body) else None
    if element is None:
        return SoapRequest(UNREADABLE, problem="Not a SOAP envelope with a Body.")
    name = _local(element.tag)
    operation = OPERATIONS.get(name)
    if operation is None:
        return SoapRequest(f"soap/{name}", problem=f"Unknown operation {name}.")
    if operation in ("contact/get", "contact/create"):
        return _contact_request(operation, element)
    if operation == "message/sendSingle":
        query = {k: v for k, v in _leaves(element).items() if k in ("messageId", "recipientId")}
        content = _child(element, "additionalContent")
        children = list(content) if content is not None else []
        holders = [c for c in children if _local(c.tag) == "parameters"]
        parameters = [
            {"name": p.get("name", ""), "value": p.get("value", "")} for p in map(_leaves, holders)
        ]
        return SoapRequest(operation, query=query, body={"parameters": parameters})
    return SoapRequest(operation)


def _contact_request(operation: str, element: ET.Element) -> SoapRequest:
    """contactGet's identifier{type, value}, or contactCreate's contact object."""
    if operation == "contact/create":
        contact = _child(element, "contact")
        return SoapRequest(operation, body=_leaves(contact) if contact is not None else {})
    identifier = _child(element, "identifier")
    fields = _leaves(identifier) if identifier is not None else {}
    return SoapRequest(operation, body={"type": fields.get("type"), "value": fields.get("value")})


def handle(exchange: Exchange, state: SandboxState, raw: bytes) -> None:
    """Answer one SOAP POST like Engage, recording it as REST calls are recorded."""
    request = parse_request(raw)
    path = urlsplit(exchange.path).path
    authorized = gate.authorized(exchange.header("Authorization"), state)
    call = Call(
        request.operation, exchange.command, path, request.query, request.body, authorized, 0, now()
    )
    admission = gate.admit(exchange, state, call, refuse=functools.partial(_send_fault, exchange))
    if not admission.proceed:
        if admission.after is not None and admission.after.kind == SOAP12_FAULT:
            exchange.send(
                admission.after.status, soap12_fault(call, admission.after.argument), _SOAP12_TYPE
            )
        return
    status, payload = _run(state, request)
    if gate.dropped_after(exchange, call, admission.after):
        return
    status, payload = _faulty(request, status, payload, admission.after)
    call.status = status
    gate.trickled(exchange, call, admission.after)
    exchange.send(status, payload, _CONTENT_TYPE)


def _faulty(
    request: SoapRequest, status: int, payload: bytes, fault: Fault | None
) -> tuple[int, bytes]:
    """The answer after a fault that replaces it once the operation has acted."""
    if fault is None:
        return status, payload
    if fault.kind == CONTACT_ID and request.operation == "contact/get":
        value = json.loads(fault.argument)
        # A JSON string goes in as its text (" 12 " keeps its spaces); anything else as written.
        text = value if isinstance(value, str) else fault.argument
        identifier = str(request.body.get("value")) if isinstance(request.body, dict) else ""
        contact = {"id": text, "identifier": identifier}
        return 200, answer_envelope("contactGetResponse", {"return": contact})
    if fault.kind == TRUNCATED:
        return 200, payload[: max(1, len(payload) // 2)]
    if fault.kind == EMPTY:
        return fault.status, b""
    if fault.kind == FOREIGN_NS and status == 200:
        return 200, payload.replace(NAMESPACE.encode(), FOREIGN_NAMESPACE.encode())
    return status, payload


def _run(state: SandboxState, request: SoapRequest) -> tuple[int, bytes]:
    if request.problem is not None:
        return 500, fault_envelope(error_body("CLIENT", "INVALID_REQUEST", request.problem))
    if request.operation == "system/getApiVersion":
        return 200, answer_envelope("systemGetApiVersionResponse", {"return": API_VERSION})
    if request.operation == "contact/get":
        return _contact_get(state, request.body)
    if request.operation == "contact/create":
        answer, contact_id = state.contact_create(request.body)
        if contact_id is None:
            return _answer_fault(answer)
        contact = {"id": str(contact_id), **request.body}
        return 200, answer_envelope("contactCreateResponse", {"return": contact})
    return _send_single(state, request.query, request.body)


def _contact_get(state: SandboxState, body: dict[str, Any]) -> tuple[int, bytes]:
    answer, contact_id = state.contact_get(str(body["type"]), str(body["value"]))
    if contact_id is None:
        return _answer_fault(answer)
    contact = {"id": str(contact_id), "identifier": str(body["value"])}
    return 200, answer_envelope("contactGetResponse", {"return": contact})


def _send_single(
    state: SandboxState, query: dict[str, str], body: dict[str, Any]
) -> tuple[int, bytes]:
    for name in ("messageId", "recipientId"):
        if not query.get(name, "").isdigit():
            missing = error_body("CLIENT", "MISSING_PARAMETER", f"Parameter {name} is missing.")
            return 500, fault_envelope({**missing, "parameterName": name})
    params = {p["name"]: p["value"] for p in body["parameters"]}
    answer = state.send_single(int(query["messageId"]), int(query["recipientId"]), params)
    if answer.status >= 400:
        return _answer_fault(answer)
    return 200, answer_envelope("messageSendSingleResponse", {})


def _answer_fault(answer: Answer) -> tuple[int, bytes]:
    # SOAP 1.1 answers every fault with 500; the detail's errorActor says whose fault it is.
    return 500, fault_envelope(answer.body or error_body("SERVER", "UNEXPECTED_ERROR", "Error."))


def _send_fault(
    exchange: Exchange,
    status: int,
    fields: Mapping[str, Any],
    extra: Mapping[str, str] | None = None,
) -> None:
    exchange.send(status, fault_envelope(fields), _CONTENT_TYPE, extra)


def soap12_fault(call: Call, code: str) -> bytes:
    """A SOAP 1.2 fault: a Sender fault carries Engage's error detail, a Receiver one a reason."""
    root = ET.Element("env:Envelope", {"xmlns:env": SOAP12_NAMESPACE})
    fault = ET.SubElement(ET.SubElement(root, "env:Body"), "env:Fault")
    ET.SubElement(ET.SubElement(fault, "env:Code"), "env:Value").text = f"env:{code}"
    if code == "Sender":
        if call.operation == "contact/get":
            value = gate.identifier_of(call)
            fields = {
                **error_body(
                    "CLIENT", "NO_SUCH_OBJECT", f"Contact with identifier={value} does not exist."
                ),
                "objectType": "Contact",
            }
        else:
            fields = error_body("CLIENT", "INVALID_PARAMETER", "Invalid parameter.")
    else:
        fields = error_body("SERVER", "UNEXPECTED_ERROR", "Database Access Limit Exceeded")
    reason = ET.SubElement(ET.SubElement(fault, "env:Reason"), "env:Text", {"xml:lang": "en"})
    reason.text = fields["message"]
    if code == "Sender":
        detail = ET.SubElement(fault, "env:Detail")
        _fill(ET.SubElement(detail, "ns2:ApiException", {"xmlns:ns2": NAMESPACE}), fields)
    return _serialize(root)


# -- envelopes ---------------------------------------------------------------------------------
# JAX-WS style prefixes (S:, ns2:), unlike the client's, so tests show the client reads any prefix.


def answer_envelope(operation: str, content: Mapping[str, Any]) -> bytes:
    """A successful answer: ``<ns2:operation>`` holding ``content`` (dicts nest elements)."""
    root, body = _envelope()
    _fill(ET.SubElement(body, f"ns2:{operation}", {"xmlns:ns2": NAMESPACE}), content)
    return _serialize(root)


def fault_envelope(fields: Mapping[str, Any]) -> bytes:
    """A fault whose detail carries Engage's error fields in one typed element."""
    root, body = _envelope()
    fault = ET.SubElement(body, "S:Fault")
    actor = "Client" if fields.get("errorActor") == "CLIENT" else "Server"
    ET.SubElement(fault, "faultcode").text = f"S:{actor}"
    ET.SubElement(fault, "faultstring").text = str(fields.get("message", ""))
    detail = ET.SubElement(fault, "detail")
    _fill(ET.SubElement(detail, "ns2:ApiException", {"xmlns:ns2": NAMESPACE}), fields)
    return _serialize(root)


def _serialize(root: ET.Element) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>' + ET.tostring(root, encoding="unicode")
    ).encode()


def _envelope() -> tuple[ET.Element, ET.Element]:
    root = ET.Element("S:Envelope", {"xmlns:S": SOAP_ENV_NAMESPACE})
    return root, ET.SubElement(root, "S:Body")


def _fill(parent: ET.Element, content: Mapping[str, Any]) -> None:
    for name, value in content.items():
        child = ET.SubElement(parent, name)
        if isinstance(value, Mapping):
            _fill(child, value)
        elif value is not None:
            child.text = str(value)


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _child(element: ET.Element, name: str) -> ET.Element | None:
    return next((c for c in element if _local(c.tag) == name), None)


def _leaves(element: ET.Element) -> dict[str, str]:
    return {_local(c.tag): (c.text or "") for c in element if len(c) == 0}
