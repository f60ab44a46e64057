"""What every Engage transport shares: the contact, the client interface and its constructor.

Knows nothing of Celery or Redis: the tasks hand it a request and get an answer or a typed error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import requests

from tasks.core.request import Identifier
from tasks.engage import http
from tasks.engage.http import CallObserver


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

    def create_contact(self, identifier: Identifier) -> Contact:
        """Create the contact (``contact/create``); already there -> EngageClientError
        ``OBJECT_ALREADY_EXISTS`` (:func:`tasks.engage.contact_create.already_exists`)."""

    def api_version(self) -> str:
        """Engage's API version: the cheapest authenticated call, used as a health check."""


class TransportClient:
    """The part REST and SOAP share: where Engage is, the session, timeouts, the observer."""

    def __init__(
        self,
        *,
        base_url: str,
        session: requests.Session,
        connect_timeout: float,
        read_timeout: float,
        observe: CallObserver | None = None,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._session = session
        self._timeout = (connect_timeout, read_timeout)
        self._observe = observe

    def get_contact(self, identifier: Identifier) -> Contact:
        """Look the contact up; a known contact id (``ID``) needs no call."""
        if identifier.type == "ID":
            return Contact(contact_id=int(identifier.value))
        return self._lookup(identifier)

    def _lookup(self, identifier: Identifier) -> Contact:
        """The transport's contact/get call."""
        raise NotImplementedError

    def _post(self, path: str, operation: str, **kwargs: Any) -> requests.Response:
        """POST to ``base_url + path`` with this client's session, timeouts and observer."""
        return http.post(
            self._session,
            self._base + path,
            operation,
            timeout=self._timeout,
            observe=self._observe,
            **kwargs,
        )

    def _get(self, path: str, operation: str) -> requests.Response:
        """GET ``base_url + path`` with this client's session, timeouts and observer."""
        return http.get(
            self._session,
            self._base + path,
            operation,
            timeout=self._timeout,
            observe=self._observe,
        )
