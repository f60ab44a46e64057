"""Engage's REST API: ``contact/get``, ``message/sendSingle`` and ``system/getApiVersion``."""

from __future__ import annotations

from collections.abc import Sequence

import requests

from tasks.engage import http as engage_http
from tasks.engage.base import Contact, TransportClient
from tasks.errors import EngageServerError
from tasks.request import Identifier


class RestEngageClient(TransportClient):
    """Engage's REST API over one pooled session."""

    def _lookup(self, identifier: Identifier) -> Contact:
        """POST contact/get; 200 -> Contact, anything else -> a typed error."""
        operation = "contact/get"
        response = engage_http.post(
            self._session,
            f"{self._base}/contact/get",
            operation,
            timeout=self._timeout,
            observe=self._observe,
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
            observe=self._observe,
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
            self._session,
            f"{self._base}/system/getApiVersion",
            operation,
            timeout=self._timeout,
            observe=self._observe,
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
