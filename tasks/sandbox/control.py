"""The sandbox's control API bodies, checked before anything changes: a wrong one gets a clear line.

``POST /_sandbox/contacts``  ``{"contacts": [{"type": "MOBILE", "value": "48505606707",
"contactId": 33457}, ...]}``; ``POST /_sandbox/messages`` ``{"messages": [{"messageId": 23541,
"requiredParameters": ["firstName"]}, ...]}``; ``POST /_sandbox/faults`` a fault plan
(:mod:`tasks.sandbox.faults`). A body that is not what its path takes is refused whole (400,
``{"error": ...}`` saying what was expected); nothing of it is applied.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from tasks.core.errors import Rebuildable
from tasks.core.request import IDENTIFIER_TYPES

CONTACT_SHAPE = '{"type": "MOBILE", "value": "48505606707", "contactId": 33457}'
CONTACTS_SHAPE = f'{{"contacts": [{CONTACT_SHAPE}, ...]}}'
MESSAGE_SHAPE = '{"messageId": 23541, "requiredParameters": ["firstName"]}'
MESSAGES_SHAPE = f'{{"messages": [{MESSAGE_SHAPE}, ...]}}'


class ControlError(Rebuildable, ValueError):
    """A control request the sandbox refuses; the message says what it expected."""

    _fields = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


def read_json(raw: bytes) -> Any:
    """The body as JSON (an empty body is ``{}``)."""
    try:
        return json.loads(raw or b"{}")
    except ValueError as err:
        raise ControlError(f"the body is not JSON ({err})") from None


def contacts(data: Any) -> list[dict[str, Any]]:
    """The contacts of a ``/_sandbox/contacts`` body, each checked."""
    checked = []
    for where, item in _objects(data, "contacts", CONTACTS_SHAPE, CONTACT_SHAPE):
        kind, value, contact_id = item.get("type"), item.get("value"), item.get("contactId")
        if kind not in IDENTIFIER_TYPES:
            raise ControlError(f"{where}.type must be one of {', '.join(IDENTIFIER_TYPES)}")
        if not isinstance(value, str) or not value:
            raise ControlError(f"{where}.value must be a non-empty string")
        checked.append({"type": kind, "value": value, "contactId": _positive(contact_id, where)})
    return checked


def messages(data: Any) -> list[dict[str, Any]]:
    """The prepared messages of a ``/_sandbox/messages`` body, each checked."""
    checked = []
    for where, item in _objects(data, "messages", MESSAGES_SHAPE, MESSAGE_SHAPE):
        required = item.get("requiredParameters", [])
        if not isinstance(required, list) or not all(isinstance(p, str) for p in required):
            raise ControlError(f"{where}.requiredParameters must be a list of names")
        message_id = _positive(item.get("messageId"), where, field="messageId")
        checked.append({"messageId": message_id, "requiredParameters": required})
    return checked


def faults(data: Any) -> dict[str, Any]:
    """A fault plan body: an object (its steps are checked by :mod:`tasks.sandbox.faults`)."""
    if not isinstance(data, dict):
        raise ControlError(
            'the body must be a fault plan object, e.g. {"script": {"contact/get": [503]}}'
        )
    return data


def _objects(
    data: Any, name: str, shape: str, item_shape: str
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each object of the list under ``name``, with where it stands (``name[i]``)."""
    for index, item in enumerate(_list_under(data, name, shape)):
        where = f"{name}[{index}]"
        if not isinstance(item, dict):
            raise ControlError(f"{where} must be an object like {item_shape}")
        yield where, item


def _list_under(data: Any, name: str, shape: str) -> list[Any]:
    if not isinstance(data, dict) or not isinstance(data.get(name), list):
        given = (
            type(data).__name__
            if not isinstance(data, dict)
            else f"an object without a {name!r} list"
        )
        raise ControlError(f"the body must be {shape}; got {given}")
    items: list[Any] = data[name]
    return items


def _positive(value: Any, where: str, *, field: str = "contactId") -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ControlError(f"{where}.{field} must be a positive whole number")
    try:
        number = int(value)
    except ValueError:
        raise ControlError(f"{where}.{field} must be a positive whole number") from None
    if number <= 0:
        raise ControlError(f"{where}.{field} must be a positive whole number")
    return number
