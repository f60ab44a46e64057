"""The Engage client: look a contact up, send it a prepared message. Knows nothing of Celery.

Two transports implement :class:`EngageClient`: REST (here) and SOAP (:mod:`tasks.engage_soap`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import requests

from tasks import engage_http
from tasks.errors import EngageServerError
from tasks.send_request import Identifier
from tasks.settings import Settings


@dataclass(frozen=True)
class Contact:
    """What Engage returned for a contact; only ``contact_id`` is relied upon."""

    contact_id: int
    fields: dict[str, Any] = field(default_factory=dict, repr=False)


class EngageClient(Protocol):
    """The calls the tasks make, whatever the transport."""

    def get_contact(self, identifier: Identifier) -> Contact:
        """Look the contact up; an ``ID`` identifier is returned as is, without a call."""

    def send_single(
        self, message_id: int, recipient_id: int, parameters: Sequence[tuple[str, str]]
    ) -> None:
        """Send the prepared message to the contact; returns only when Engage accepted it."""

    def api_version(self) -> str:
        """Engage's API version: the cheapest authenticated call, used as a health check."""


class RestEngageClient:
    """Engage's REST API over one pooled session."""

    def __init__(
        self,
        *,
        base_url: str,
        session: requests.Session,
        connect_timeout: float,
        read_timeout: float,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._session = session
        self._timeout = (connect_timeout, read_timeout)

    def get_contact(self, identifier: Identifier) -> Contact:
        """POST contact/get; 200 -> Contact, anything else -> a typed error."""
        if identifier.type == "ID":
            return Contact(contact_id=int(identifier.value))
        operation = "contact/get"
        response = engage_http.post(
            self._session,
            f"{self._base}/contact/get",
            operation,
            timeout=self._timeout,
            json={"type": identifier.type, "value": identifier.value},
            headers=_JSON_HEADERS,
        )
        if response.status_code != 200:
            raise self._error(operation, response)
        body, problem = engage_http.json_error_fields(response)
        contact_id = body.get("contactId")
        if problem or isinstance(contact_id, bool) or not isinstance(contact_id, int | str):
            raise EngageServerError(
                operation, status=200, message=problem or "answer has no contactId"
            )
        try:
            return Contact(contact_id=int(contact_id), fields=body)
        except ValueError:
            raise EngageServerError(
                operation, status=200, message="contactId is not a number"
            ) from None

    def send_single(
        self, message_id: int, recipient_id: int, parameters: Sequence[tuple[str, str]]
    ) -> None:
        """POST message/sendSingle; any 2xx (204 documented) is success."""
        operation = "message/sendSingle"
        response = engage_http.post(
            self._session,
            f"{self._base}/message/sendSingle",
            operation,
            timeout=self._timeout,
            params={"messageId": message_id, "recipientId": recipient_id},
            json={"parameters": [{"name": n, "value": v} for n, v in parameters]},
            headers=_JSON_HEADERS,
        )
        if not 200 <= response.status_code < 300:
            raise self._error(operation, response)

    def api_version(self) -> str:
        """GET system/getApiVersion."""
        operation = "system/getApiVersion"
        response = engage_http.get(
            self._session, f"{self._base}/system/getApiVersion", operation, timeout=self._timeout
        )
        if response.status_code != 200:
            raise self._error(operation, response)
        return response.text.strip().strip('"')

    @staticmethod
    def _error(operation: str, response: requests.Response) -> Exception:
        fields, problem = engage_http.json_error_fields(response)
        return engage_http.api_error(
            operation, response.status_code, fields, response.headers, fallback_message=problem
        )


_JSON_HEADERS = {"Accept": "application/json"}


def build_client(settings: Settings, session: requests.Session | None = None) -> EngageClient:
    """The client the settings ask for, on a new pooled session unless one is given."""
    session = session or engage_http.make_session(
        settings.engage_username, settings.engage_password, base_url=settings.engage_base_url
    )
    if settings.engage_transport == "soap":
        from tasks.engage_soap import SoapEngageClient  # noqa: PLC0415  (only SOAP users pay)

        return SoapEngageClient(
            endpoint=settings.engage_base_url,
            session=session,
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
        )
    return RestEngageClient(
        base_url=settings.engage_base_url,
        session=session,
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
    )
