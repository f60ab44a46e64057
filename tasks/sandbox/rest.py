"""The sandbox's REST endpoint: Engage's JSON answers, once :mod:`tasks.sandbox.gate` admits a call.

Answers contact/get, message/sendSingle and system/getApiVersion as Engage's REST API does.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tasks.sandbox import gate
from tasks.sandbox.faults import CONTACT_ID, EMPTY, TRUNCATED, Fault
from tasks.sandbox.gate import API_VERSION, Exchange, error_body
from tasks.sandbox.state import Answer, Call, SandboxState, now

_JSON = "application/json"


def handle(exchange: Exchange, state: SandboxState, operation: str, raw: bytes | None) -> None:
    """Answer one REST call like Engage, recording it."""
    split = urlsplit(exchange.path)
    query = dict(parse_qsl(split.query))
    body = _parse_json(raw)
    authorized = gate.authorized(exchange.header("Authorization"), state)
    call = Call(operation, exchange.command, split.path, query, body, authorized, 0, now())
    admission = gate.admit(exchange, state, call, refuse=functools.partial(send_json, exchange))
    if not admission.proceed:
        if admission.after is not None:  # a SOAP-only fault: REST answers its status
            _send_injected(exchange, admission.after.status)
        return
    answer, payload = _run(state, operation, query, body)
    if gate.dropped_after(exchange, call, admission.after):
        return
    answer, payload = _faulty(operation, answer, payload, admission.after, body)
    call.status = answer.status
    gate.trickled(exchange, call, admission.after)
    if payload is not None and (answer.status == 200 or not payload):
        exchange.send(answer.status, payload, _JSON if payload else None)
    elif answer.body is not None:
        send_json(exchange, answer.status, answer.body)
    else:
        exchange.send(answer.status, b"", None)


def send_json(
    exchange: Exchange, status: int, data: Any, headers: Mapping[str, str] | None = None
) -> None:
    """Answer with JSON, and these extra headers."""
    exchange.send(status, json.dumps(data).encode(), _JSON, headers or {})


def _run(
    state: SandboxState, operation: str, query: dict[str, str], body: Any
) -> tuple[Answer, bytes | None]:
    if operation == "system/getApiVersion":
        return Answer(200), json.dumps(API_VERSION).encode()
    if not isinstance(body, dict):
        return Answer(400, error_body("CLIENT", "INVALID_REQUEST", "Body must be JSON.")), None
    if operation in ("contact/get", "contact/create"):
        return _contact(state, operation, body)
    message_id, recipient_id = query.get("messageId", ""), query.get("recipientId", "")
    for name, value in (("messageId", message_id), ("recipientId", recipient_id)):
        if not value.isdigit():
            missing = error_body("CLIENT", "MISSING_PARAMETER", f"Parameter {name} is missing.")
            return Answer(400, {**missing, "parameterName": name}), None
    params = {
        str(p.get("name")): str(p.get("value"))
        for p in body.get("parameters", [])
        if isinstance(p, dict)
    }
    return state.send_single(int(message_id), int(recipient_id), params), None


def _contact(
    state: SandboxState, operation: str, body: dict[str, Any]
) -> tuple[Answer, bytes | None]:
    """contact/get or contact/create: the contact as JSON, or Engage's error."""
    if operation == "contact/create":
        answer, contact_id = state.contact_create(body)
        contact = {"contactId": contact_id, **body}
    else:
        answer, contact_id = state.contact_get(str(body.get("type")), str(body.get("value")))
        contact = {"contactId": contact_id, "identifier": body.get("value")}
    if contact_id is None:
        return answer, None
    return answer, json.dumps(contact).encode()


def _faulty(
    operation: str, answer: Answer, payload: bytes | None, fault: Fault | None, body: Any
) -> tuple[Answer, bytes | None]:
    """The answer after a fault that replaces it once the operation has acted."""
    if fault is None:
        return answer, payload
    if fault.kind == CONTACT_ID and operation == "contact/get":
        # The literal goes in as written, so 3.0 stays a float and 2**70 stays exact.
        identifier = json.dumps(body.get("value") if isinstance(body, dict) else None)
        text = f'{{"contactId": {fault.argument}, "identifier": {identifier}}}'
        return Answer(200), text.encode()
    if fault.kind == TRUNCATED:
        whole = payload or json.dumps({"status": answer.status, "body": answer.body}).encode()
        return Answer(200), whole[: max(1, len(whole) // 2)]
    if fault.kind == EMPTY:
        return Answer(fault.status), b""
    return answer, payload


def _send_injected(exchange: Exchange, status: int) -> None:
    fields, headers = gate.injected_error(status)
    send_json(exchange, status, fields, headers)


def _parse_json(raw: bytes | None) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")
