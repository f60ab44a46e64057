"""Engage's SOAP API behind the same :class:`~tasks.engage.base.EngageClient` interface as REST.

Envelopes are built and read in :mod:`tasks.engage.soap_envelope`; here they are posted, and
faults become the same typed errors as REST error bodies, through
:func:`tasks.engage.http.api_error`, so "unknown recipient" means the same on both transports.
Success is only the operation's documented answer; anything else is
:class:`~tasks.core.errors.UnexpectedAnswer`, as on REST.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from typing import TypeVar

import requests

from tasks.core.errors import OutcomeUnknown, RequestNotSent
from tasks.core.request import Identifier
from tasks.engage import answers, contact_create
from tasks.engage import http as engage_http
from tasks.engage.base import Contact, TransportClient
from tasks.engage.soap_envelope import (
    SOAP_ACTION,
    UnreadableAnswer,
    build_envelope,
    contact_from_answer,
    contact_get_envelope,
    parse_fault,
    read_envelope,
    send_single_answer,
    send_single_envelope,
    version_from_answer,
)

#: The one status of an empty answer that means "sent": Engage's page documents a 204 "with no
#: further information". An empty 200 or 202 says nothing about the operation (a gateway or a
#: one-way acknowledgement may send it without Engage acting): it is no success, as on REST.
EMPTY_SUCCESS = 204

_HEADERS = {
    "Content-Type": "text/xml; charset=utf-8",
    "SOAPAction": SOAP_ACTION,
    "Accept": "text/xml",
}

T = TypeVar("T")


def fault_status(http_status: int, actor: str | None) -> int:
    """The HTTP status a fault is classified by, as REST would have answered it."""
    # SOAP 1.1 answers every fault with HTTP 500, whoever is at fault. Engage's errorActor tells
    # the two apart, so a CLIENT fault is classified as the 400 REST sends for it: otherwise an
    # unknown contact would look like a server error and be retried. Other statuses (401/403
    # credentials, 429, 503 from a proxy) already say what happened and are kept.
    if http_status == 500 or http_status < 400:
        return 400 if actor == "CLIENT" else 500
    return http_status


class SoapEngageClient(TransportClient):
    """Engage's SOAP API over one pooled session; ``base_url`` is the SOAP endpoint."""

    def _lookup(self, identifier: Identifier) -> Contact:
        """contactGet; a contact -> Contact, anything else -> a typed error."""
        operation = "contact/get"
        response = self._post_envelope(operation, contact_get_envelope(identifier))
        return self._answer(operation, response, contact_from_answer)

    def send_single(
        self, message_id: int, recipient_id: int, parameters: Sequence[tuple[str, str]]
    ) -> None:
        """messageSendSingle; returns only on an empty 204 or its response element with 200."""
        operation = "message/sendSingle"
        envelope = send_single_envelope(message_id, recipient_id, parameters)
        response = self._post_envelope(operation, envelope)
        if response.status_code == EMPTY_SUCCESS and not response.content.strip():
            return
        self._answer(operation, response, send_single_answer, sends=True)

    def create_contact(self, identifier: Identifier) -> Contact:
        """contactCreate; the new contact -> Contact, anything else -> a typed error."""
        operation = contact_create.OPERATION
        response = self._post_envelope(operation, contact_create.envelope(identifier))
        return self._answer(operation, response, contact_create.contact_from_soap)

    def api_version(self) -> str:
        """systemGetApiVersion."""
        operation = "system/getApiVersion"
        try:
            response = self._post_envelope(operation, build_envelope("systemGetApiVersion", []))
        except OutcomeUnknown as err:
            # Asking the version changes nothing: a lost answer is as safe to retry as REST's GET.
            raise RequestNotSent(operation, err.description) from err
        return self._answer(operation, response, version_from_answer)

    def _post_envelope(self, operation: str, envelope: bytes) -> requests.Response:
        """POST a SOAP envelope to the endpoint (``base_url`` itself)."""
        return self._post("", operation, data=envelope, headers=_HEADERS)

    def _answer(
        self,
        operation: str,
        response: requests.Response,
        read: Callable[[ET.Element], T],
        *,
        sends: bool = False,
    ) -> T:
        """``read`` applied to a 200 answer's Body element; anything else -> a typed error."""
        status = response.status_code
        if status < 400 and (status >= 300 or answers.is_html(response)):
            raise answers.unexpected(operation, response, sends=sends)
        try:
            element = read_envelope(response.content)
        except UnreadableAnswer as err:
            if status < 400:
                raise answers.unexpected(operation, response, err.reason, sends=sends) from err
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
        if status >= 400:
            raise engage_http.api_error(
                operation,
                status,
                {},
                response.headers,
                fallback_message=f"unexpected <{element.tag.rpartition('}')[2]}> answer",
            )
        try:
            if status != 200:
                raise UnreadableAnswer("a SOAP answer, but not with 200 OK")
            return read(element)
        except UnreadableAnswer as err:
            raise answers.unexpected(operation, response, err.reason, sends=sends) from err
