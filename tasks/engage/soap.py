"""Engage's SOAP API behind the same :class:`~tasks.engage.base.EngageClient` interface as REST.

Requests are SOAP 1.1 envelopes built with :mod:`xml.etree` (every value escaped); answers are
read with :mod:`defusedxml` and faults become the same typed errors as REST error bodies, through
:func:`tasks.engage.http.api_error`, so "unknown recipient" means the same on both transports.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as _safe_fromstring

from tasks.engage import http as engage_http
from tasks.engage.base import Contact, TransportClient
from tasks.errors import EngageServerError, InvalidSendRequest, OutcomeUnknown, RequestNotSent
from tasks.masking import mask_text
from tasks.request import Identifier

#: Engage's SOAP namespace (the prepared-SMS page shows a placeholder; this is the real one).
NAMESPACE = "http://ecircle.com/developer/ecmapi"
#: SOAP 1.1 envelope namespace.
SOAP_ENV_NAMESPACE = "http://schemas.xmlsoap.org/soap/envelope/"
#: An empty SOAPAction: the operation is named by the Body element (WS-I Basic Profile), which
#: every JAX-WS endpoint accepts, whereas a guessed action URI may be rejected.
SOAP_ACTION = '""'

#: Element content: text, or child elements in order.
Content: TypeAlias = "str | Sequence[tuple[str, Content]]"

_HEADERS = {
    "Content-Type": "text/xml; charset=utf-8",
    "SOAPAction": SOAP_ACTION,
    "Accept": "text/xml",
}
_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'
# Characters XML 1.0 cannot carry at all, even escaped.
_NOT_XML = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_TAGS = re.compile(r"<[^>]*>")
# An error page from a proxy or load balancer, possibly behind an XML declaration.
_HTML = re.compile(r"(<\?xml[^>]*>\s*)?(<!doctype html|<html[\s>])", re.IGNORECASE)


class UnreadableAnswer(ValueError):
    """An answer that is not a readable SOAP envelope; never escapes the client."""

    def __init__(self, reason: str, *, empty: bool = False, status: int = 0) -> None:
        self.reason = reason
        self.empty = empty
        self.status = status
        super().__init__(reason)


@dataclass(frozen=True)
class Fault:
    """A SOAP fault: faultcode, faultstring and Engage's error fields from its detail."""

    code: str
    string: str
    fields: dict[str, str]

    @property
    def actor(self) -> str | None:
        """``CLIENT`` or ``SERVER``: Engage's errorActor, else read from the faultcode."""
        return self.fields.get("errorActor")


# -- envelopes (pure) --------------------------------------------------------------------------


def build_envelope(operation: str, content: Sequence[tuple[str, Content]]) -> bytes:
    """A SOAP 1.1 request calling ``operation`` in Engage's namespace; all text is escaped."""
    # Prefixed names are written literally, so no global ET.register_namespace is needed.
    root = ET.Element(
        "soapenv:Envelope", {"xmlns:soapenv": SOAP_ENV_NAMESPACE, "xmlns:ecm": NAMESPACE}
    )
    ET.SubElement(root, "soapenv:Header")
    body = ET.SubElement(root, "soapenv:Body")
    _fill(ET.SubElement(body, f"ecm:{operation}"), content, "")
    text = ET.tostring(root, encoding="unicode")
    # A raw CR would be normalised to LF by the receiving parser; a character reference survives.
    return (_DECLARATION + text.replace("\r", "&#13;")).encode("utf-8")


def _fill(parent: ET.Element, content: Sequence[tuple[str, Content]], path: str) -> None:
    for tag, value in content:
        child = ET.SubElement(parent, tag)
        where = f"{path}/{tag}" if path else tag
        if isinstance(value, str):
            bad = _NOT_XML.search(value)
            if bad:
                raise InvalidSendRequest(
                    where, f"contains U+{ord(bad.group()):04X}, which XML cannot carry"
                )
            child.text = value
        else:
            _fill(child, value, where)


def contact_get_envelope(identifier: Identifier) -> bytes:
    """``contactGet(identifier{type, value})``."""
    return build_envelope(
        "contactGet", [("identifier", [("type", identifier.type), ("value", identifier.value)])]
    )


def send_single_envelope(
    message_id: int, recipient_id: int, parameters: Sequence[tuple[str, str]]
) -> bytes:
    """``messageSendSingle(messageId, recipientId, additionalContent{parameters*{name,value}})``."""
    params: list[tuple[str, Content]] = [
        ("parameters", [("name", name), ("value", value)]) for name, value in parameters
    ]
    return build_envelope(
        "messageSendSingle",
        [
            ("messageId", str(message_id)),
            ("recipientId", str(recipient_id)),
            ("additionalContent", params),
        ],
    )


# -- answers (pure) ----------------------------------------------------------------------------


def read_envelope(content: bytes) -> ET.Element:
    """The element inside the SOAP Body; :class:`UnreadableAnswer` says why there is none."""
    text = content.decode("utf-8", errors="replace").strip()
    if not text:
        raise UnreadableAnswer("empty answer", empty=True)
    if _HTML.match(text):
        readable = " ".join(_TAGS.sub(" ", text).split())
        raise UnreadableAnswer(f"HTML answer, not SOAP: {readable[: engage_http.BODY_EXCERPT]}")
    try:
        # SOAP forbids DTDs outright, so refusing them also stops entity expansion and XXE early.
        root = _safe_fromstring(content, forbid_dtd=True)
    except DefusedXmlException as err:
        raise UnreadableAnswer(
            f"unsafe XML refused ({type(err).__name__}): SOAP answers may not declare a DTD"
        ) from err
    except (ET.ParseError, ValueError) as err:
        excerpt = " ".join(text[: engage_http.BODY_EXCERPT].split())
        raise UnreadableAnswer(f"malformed XML ({err}): {excerpt}") from err
    if _local(root.tag) != "Envelope":
        raise UnreadableAnswer(f"answer is not a SOAP envelope (root <{_local(root.tag)}>)")
    body = _child(root, "Body")
    if body is None or len(body) == 0:
        raise UnreadableAnswer("SOAP envelope has no Body content")
    return body[0]


def parse_fault(element: ET.Element) -> Fault | None:
    """The fault, if the Body holds one; Engage's fields come from the detail element's child."""
    if _local(element.tag) != "Fault":
        return None
    code = _text(_child(element, "faultcode"))
    fields: dict[str, str] = {}
    detail = _child(element, "detail")
    if detail is not None:
        # Engage wraps its fields in one typed element; accept them bare as well.
        holder = detail if _child(detail, "errorCode") is not None else next(iter(detail), None)
        if holder is not None:
            fields = {_local(c.tag): _text(c) for c in holder if len(c) == 0}
    if "errorActor" not in fields:
        kind = code.rpartition(":")[2].split(".")[0]
        if kind in ("Client", "Server"):
            fields["errorActor"] = kind.upper()
    return Fault(code=code, string=_text(_child(element, "faultstring")), fields=fields)


def fault_status(http_status: int, actor: str | None) -> int:
    """The HTTP status a fault is classified by, as REST would have answered it."""
    # SOAP 1.1 answers every fault with HTTP 500, whoever is at fault. Engage's errorActor tells
    # the two apart, so a CLIENT fault is classified as the 400 REST sends for it: otherwise an
    # unknown contact would look like a server error and be retried. Other statuses (401/403
    # credentials, 429, 503 from a proxy) already say what happened and are kept.
    if http_status == 500 or http_status < 400:
        return 400 if actor == "CLIENT" else 500
    return http_status


def contact_from_answer(element: ET.Element) -> Contact:
    """The Contact in a contactGet answer: ``<return><id>`` (or ``contactId``)."""
    holder = _child(element, "return")
    holder = element if holder is None else holder
    fields = {_local(c.tag): _text(c) for c in holder if len(c) == 0}
    raw_id = fields.get("id") or fields.get("contactId")
    if raw_id is None or not (raw_id.isascii() and raw_id.isdigit()):
        problem = "has no contact id" if raw_id is None else "has a contact id that is not a number"
        raise EngageServerError("contact/get", status=200, message=f"answer {problem}")
    return Contact(contact_id=int(raw_id), fields=dict(fields))


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _child(element: ET.Element, name: str) -> ET.Element | None:
    return next((c for c in element if _local(c.tag) == name), None)


def _text(element: ET.Element | None) -> str:
    return "" if element is None or element.text is None else element.text.strip()


# -- the client --------------------------------------------------------------------------------


class SoapEngageClient(TransportClient):
    """Engage's SOAP API over one pooled session; ``base_url`` is the SOAP endpoint."""

    def _lookup(self, identifier: Identifier) -> Contact:
        """contactGet; a contact -> Contact, anything else -> a typed error."""
        operation = "contact/get"
        try:
            element = self._call(operation, contact_get_envelope(identifier))
        except UnreadableAnswer as err:
            raise EngageServerError(operation, status=err.status, message=err.reason) from err
        return contact_from_answer(element)

    def send_single(
        self, message_id: int, recipient_id: int, parameters: Sequence[tuple[str, str]]
    ) -> None:
        """messageSendSingle; returns when Engage answered without a fault."""
        operation = "message/sendSingle"
        try:
            self._call(operation, send_single_envelope(message_id, recipient_id, parameters))
        except UnreadableAnswer as err:
            if err.empty:
                return  # an empty 2xx is a one-way success, as REST's 204
            # A 2xx says Engage took the request; refusing to guess keeps it from being sent twice.
            raise OutcomeUnknown(
                operation,
                f"HTTP {err.status} answer could not be read ({err.reason}); "
                "the message may have been sent",
            ) from err

    def api_version(self) -> str:
        """systemGetApiVersion."""
        operation = "system/getApiVersion"
        try:
            element = self._call(operation, build_envelope("systemGetApiVersion", []))
        except UnreadableAnswer as err:
            raise EngageServerError(operation, status=err.status, message=err.reason) from err
        except OutcomeUnknown as err:
            # Asking the version changes nothing: a lost answer is as safe to retry as REST's GET.
            raise RequestNotSent(operation, str(err).partition(": ")[2]) from err
        version = _text(_child(element, "return"))
        if not version:
            raise EngageServerError(operation, status=200, message="answer has no version")
        return version

    def _call(self, operation: str, envelope: bytes) -> ET.Element:
        """POST the envelope; the Body's element, or a typed error (UnreadableAnswer on 2xx)."""
        response = engage_http.post(
            self._session,
            self._base,
            operation,
            timeout=self._timeout,
            observe=self._observe,
            data=envelope,
            headers=_HEADERS,
        )
        status = response.status_code
        success = 200 <= status < 300
        try:
            element = read_envelope(response.content)
        except UnreadableAnswer as err:
            if success:
                # The excerpt may echo an identifier: mask it before it reaches an error text.
                reason = mask_text(err.reason)
                raise UnreadableAnswer(reason, empty=err.empty, status=status) from err
            raise engage_http.api_error(
                operation, status, {}, response.headers, fallback_message=err.reason
            ) from err
        fault = parse_fault(element)
        if fault is not None:
            raise engage_http.api_error(
                operation,
                fault_status(status, fault.actor),
                fault.fields,
                response.headers,
                fallback_message=fault.string or fault.code or "SOAP fault without a reason",
            )
        if not success:
            raise engage_http.api_error(
                operation,
                status,
                {},
                response.headers,
                fallback_message=f"unexpected <{_local(element.tag)}> answer",
            )
        return element
