"""Engage's REST API: ``contact/get``, ``message/sendSingle`` and ``system/getApiVersion``."""

from __future__ import annotations

from collections.abc import Sequence

import requests

from tasks.core.errors import EngageError
from tasks.core.request import Identifier
from tasks.engage import answers, contact_create
from tasks.engage import http as engage_http
from tasks.engage.base import Contact, TransportClient


class RestEngageClient(TransportClient):
    """Engage's REST API over one pooled session."""

    def _lookup(self, identifier: Identifier) -> Contact:
        """POST contact/get; 200 -> Contact, anything else -> a typed error."""
        operation = "contact/get"
        response = self._post(
            "/contact/get",
            operation,
            json={"type": identifier.type, "value": identifier.value},
            headers=_JSON_HEADERS,
        )
        if response.status_code != 200:
            raise self._error(operation, response)
        return _contact(operation, response)

    def send_single(
        self, message_id: int, recipient_id: int, parameters: Sequence[tuple[str, str]]
    ) -> None:
        """POST message/sendSingle; only 204, the documented answer, is success."""
        operation = "message/sendSingle"
        response = self._post(
            "/message/sendSingle",
            operation,
            params={"messageId": message_id, "recipientId": recipient_id},
            json={"parameters": [{"name": n, "value": v} for n, v in parameters]},
            headers=_JSON_HEADERS,
        )
        if response.status_code != 204:
            raise self._error(operation, response, sends=True)

    def create_contact(self, identifier: Identifier) -> Contact:
        """POST contact/create; 200 with the new contact -> Contact, else a typed error."""
        operation = contact_create.OPERATION
        response = self._post(
            "/contact/create",
            operation,
            json=contact_create.contact_object(identifier),
            headers=_JSON_HEADERS,
        )
        if response.status_code != 200:
            raise self._error(operation, response)
        return _contact(operation, response)

    def api_version(self) -> str:
        """GET system/getApiVersion."""
        operation = "system/getApiVersion"
        response = self._get("/system/getApiVersion", operation)
        if response.status_code != 200 or answers.is_html(response):
            raise self._error(operation, response)
        return response.text.strip().strip('"')

    @staticmethod
    def _error(operation: str, response: requests.Response, *, sends: bool = False) -> EngageError:
        """An error status as Engage's typed error; anything else as an unexpected answer."""
        if response.status_code < 400:
            expected = "not the documented 204" if sends else "not the documented answer"
            return answers.unexpected(operation, response, expected, sends=sends)
        fields, problem = engage_http.json_error_fields(response)
        return engage_http.api_error(
            operation, response.status_code, fields, response.headers, fallback_message=problem
        )


def _contact(operation: str, response: requests.Response) -> Contact:
    """The contact in a 200 answer to contact/get, or UnexpectedAnswer naming what is wrong."""
    if answers.is_html(response) or not answers.is_json(response):
        raise answers.unexpected(operation, response, "not JSON")
    try:
        body = response.json()
    except ValueError:
        raise answers.unexpected(operation, response, "body is not JSON") from None
    if not isinstance(body, dict) or "contactId" not in body:
        raise answers.unexpected(operation, response, "no contactId in the answer")
    try:
        contact_id = answers.contact_id(body["contactId"])
    except ValueError as err:
        raise answers.unexpected(operation, response, str(err)) from None
    return Contact(contact_id=contact_id, fields=body)


_JSON_HEADERS = {"Accept": "application/json"}
