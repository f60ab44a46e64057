"""Engage's SOAP 1.1 envelopes as pure functions: requests built, answers and faults read.

Requests are built with :mod:`xml.etree` (every value escaped); answers are read with
:mod:`defusedxml`. Nothing here does I/O: :mod:`tasks.engage.soap` posts the envelopes and turns
:class:`UnreadableAnswer` and :class:`Fault` into the package's typed errors.
"""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as _safe_fromstring

from tasks.core.errors import InvalidSendRequest, Rebuildable
from tasks.core.masking import excerpt
from tasks.core.request import Identifier
from tasks.engage import answers
from tasks.engage.base import Contact

#: Engage's SOAP namespace (the prepared-SMS page shows a placeholder; this is the real one).
NAMESPACE = "http://ecircle.com/developer/ecmapi"
#: SOAP 1.1 envelope namespace.
SOAP_ENV_NAMESPACE = "http://schemas.xmlsoap.org/soap/envelope/"
#: SOAP 1.2 envelope namespace: requests are 1.1, but a gateway may answer a fault in 1.2.
SOAP12_ENV_NAMESPACE = "http://www.w3.org/2003/05/soap-envelope"
_ENVELOPES = frozenset({SOAP_ENV_NAMESPACE, SOAP12_ENV_NAMESPACE})
#: SOAP 1.2 fault codes, and the errorActor each stands for (1.1's Client and Server).
_SOAP12_ACTORS = {"Sender": "CLIENT", "Receiver": "SERVER"}
#: An empty SOAPAction: the operation is named by the Body element (WS-I Basic Profile), which
#: every JAX-WS endpoint accepts, whereas a guessed action URI may be rejected.
SOAP_ACTION = '""'

#: Element content: text, or child elements in order.
Content: TypeAlias = "str | Sequence[tuple[str, Content]]"

#: How much of an unreadable answer is quoted in the error (the delivery layer masks it).
EXCERPT = 200

_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'
# Characters XML 1.0 cannot carry at all, even escaped.
_NOT_XML = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_TAGS = re.compile(r"<[^>]*>")
# An error page from a proxy or load balancer, possibly behind an XML declaration.
_HTML = re.compile(r"(<\?xml[^>]*>\s*)?(<!doctype html|<html[\s>])", re.IGNORECASE)


class UnreadableAnswer(Rebuildable, ValueError):
    """An answer that is not the SOAP answer expected; never escapes the client."""

    _fields = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason
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
        raise UnreadableAnswer("empty answer")
    if _HTML.match(text):
        readable = html.unescape(_TAGS.sub(" ", text))
        raise UnreadableAnswer(f"HTML answer, not SOAP: {excerpt(readable, EXCERPT)}")
    try:
        # SOAP forbids DTDs outright, so refusing them also stops entity expansion and XXE early.
        root = _safe_fromstring(content, forbid_dtd=True)
    except DefusedXmlException as err:
        raise UnreadableAnswer(
            f"unsafe XML refused ({type(err).__name__}): SOAP answers may not declare a DTD"
        ) from err
    except (ET.ParseError, ValueError) as err:
        raise UnreadableAnswer(f"malformed XML ({err}): {excerpt(text, EXCERPT)}") from err
    if _local(root.tag) != "Envelope" or _namespace(root.tag) not in _ENVELOPES:
        raise UnreadableAnswer(f"answer is not a SOAP envelope (root <{_qualified(root.tag)}>)")
    body = _child(root, "Body")
    if body is None or len(body) == 0:
        raise UnreadableAnswer("SOAP envelope has no Body content")
    return body[0]


def parse_fault(element: ET.Element) -> Fault | None:
    """The fault, if the Body holds one; Engage's fields come from the detail element's child.

    SOAP 1.1 (``faultcode``, ``faultstring``, ``detail``) and 1.2 (``Code/Value``,
    ``Reason/Text``, ``Detail``) are read alike, so a 1.2 fault keeps its reason and its actor.
    """
    if _local(element.tag) != "Fault":
        return None
    code = _text(_child(element, "faultcode"))
    string = _text(_child(element, "faultstring"))
    code_holder = _child(element, "Code")
    if code_holder is not None:  # SOAP 1.2
        code = _text(_child(code_holder, "Value"))
        string = _text(_child(_child(element, "Reason"), "Text"))
    fields: dict[str, str] = {}
    detail = _child(element, "detail")
    detail = _child(element, "Detail") if detail is None else detail
    if detail is not None:
        # Engage wraps its fields in one typed element; accept them bare as well.
        holder = detail if _child(detail, "errorCode") is not None else next(iter(detail), None)
        if holder is not None:
            fields = {_local(c.tag): _text(c) for c in holder if len(c) == 0}
    if "errorActor" not in fields:
        kind = code.rpartition(":")[2].split(".")[0]
        if kind in ("Client", "Server"):
            fields["errorActor"] = kind.upper()
        elif kind in _SOAP12_ACTORS:
            fields["errorActor"] = _SOAP12_ACTORS[kind]
    return Fault(code=code, string=string, fields=fields)


def contact_from_answer(element: ET.Element) -> Contact:
    """The Contact in a contactGet answer: ``<return><id>`` (or ``contactId``)."""
    holder = _child(_expect(element, "contactGetResponse"), "return")
    holder = element if holder is None else holder
    # The id's text is taken as it is: the REST rule applies (digits only, 1 .. 2**63-1), so
    # " 12 " is refused here too. xs:long would allow spaces and a sign, but Engage writes
    # neither; an answer that has them was written by something else.
    raw = {_local(c.tag): c.text or "" for c in holder if len(c) == 0}
    raw_id = raw.get("id", raw.get("contactId"))
    if raw_id is None:
        raise UnreadableAnswer("answer has no contact id")
    try:
        contact_id = answers.contact_id(raw_id)
    except ValueError as err:
        raise UnreadableAnswer(str(err)) from None
    return Contact(contact_id=contact_id, fields={k: v.strip() for k, v in raw.items()})


def version_from_answer(element: ET.Element) -> str:
    """The version in a systemGetApiVersion answer."""
    version = _text(_child(_expect(element, "systemGetApiVersionResponse"), "return"))
    if not version:
        raise UnreadableAnswer("answer has no version")
    return version


def send_single_answer(element: ET.Element) -> None:
    """Check a messageSendSingle answer: the operation's (empty) response element."""
    _expect(element, "messageSendSingleResponse")


def _expect(element: ET.Element, name: str) -> ET.Element:
    # The namespace too: the same name in another service's namespace is not Engage's answer.
    if element.tag != f"{{{NAMESPACE}}}{name}":
        raise UnreadableAnswer(f"<{_qualified(element.tag)}> answered, not Engage's <{name}>")
    return element


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _namespace(tag: str) -> str:
    return tag[1:].partition("}")[0] if tag.startswith("{") else ""


def _qualified(tag: str) -> str:
    """A tag for an error text: its local name, and its namespace when that is not Engage's."""
    namespace = _namespace(tag)
    if namespace in ("", NAMESPACE):
        return _local(tag)
    return f"{_local(tag)} in {excerpt(namespace, EXCERPT)}"


def _child(element: ET.Element | None, name: str) -> ET.Element | None:
    if element is None:
        return None
    return next((c for c in element if _local(c.tag) == name), None)


def _text(element: ET.Element | None) -> str:
    return "" if element is None or element.text is None else element.text.strip()
