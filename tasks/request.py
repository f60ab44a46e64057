"""The validated description of one send, built at enqueue time from the caller's arguments."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tasks.errors import InvalidSendRequest
from tasks.masking import mask_email, mask_phone

#: Engage ids are signed 64-bit integers.
MAX_ENGAGE_ID = 2**63 - 1
#: E.164 allows at most 15 digits; fewer than 8 cannot be an international mobile number.
MIN_MOBILE_DIGITS, MAX_MOBILE_DIGITS = 8, 15
#: RFC 5321 path limit.
MAX_EMAIL_LENGTH = 254
#: Length limit for app aliases, external ids and idempotency keys.
MAX_IDENTIFIER_LENGTH = 255
#: Placeholders per message and their sizes; an SMS is short, these bound the task message size.
MAX_PARAMETERS = 50
MAX_PARAMETER_NAME_LENGTH = 100
MAX_PARAMETER_VALUE_LENGTH = 1000
MAX_PARAMETERS_TOTAL = 8000

IDENTIFIER_TYPES = ("MOBILE", "EMAIL", "APP_ALIAS", "EXTERNAL", "ID")

_PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE_SEPARATORS = re.compile(r"[ \-().\u00a0/]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Tab, newline and carriage return are text; other control characters cannot travel in XML.
_UNSENDABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class Identifier:
    """How Engage finds the contact: ``type`` is one of :data:`IDENTIFIER_TYPES`."""

    type: str
    value: str

    def masked(self) -> str:
        """The identifier as shown in logs and Flower."""
        if self.type == "MOBILE":
            return f"MOBILE:{mask_phone(self.value)}"
        if self.type == "EMAIL":
            return f"EMAIL:{mask_email(self.value)}"
        if self.type == "ID":
            return f"ID:{self.value}"
        return f"{self.type}:{self.value[:2]}***"


@dataclass(frozen=True)
class SendRequest:
    """One prepared message to one contact, with its placeholder values."""

    message_id: int
    identifier: Identifier
    parameters: tuple[tuple[str, str], ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """JSON form, as carried in task messages and stored in the ledger."""
        return {
            "message_id": self.message_id,
            "identifier": {"type": self.identifier.type, "value": self.identifier.value},
            "parameters": [list(p) for p in self.parameters],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SendRequest:
        """Inverse of :meth:`to_dict` (the data was validated when it was made)."""
        ident = data["identifier"]
        return cls(
            message_id=int(data["message_id"]),
            identifier=Identifier(str(ident["type"]), str(ident["value"])),
            parameters=tuple((str(n), str(v)) for n, v in data["parameters"]),
        )

    def fingerprint(self) -> str:
        """A stable digest of the request: same request, same fingerprint."""
        data = self.to_dict()
        data["parameters"] = sorted(data["parameters"])  # order does not change the request
        canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def masked(self) -> dict[str, Any]:
        """A description safe for logs, Flower and dead-letter listings."""
        return {
            "message_id": self.message_id,
            "recipient": self.identifier.masked(),
            "parameters": sorted(name for name, _ in self.parameters),
        }


def build_send_request(
    message_id: object,
    *,
    mobile: str | None = None,
    email: str | None = None,
    app_alias: str | None = None,
    external_id: str | None = None,
    recipient_id: object = None,
    parameters: Mapping[str, str] | None = None,
) -> SendRequest:
    """Validate the caller's arguments; raise :class:`InvalidSendRequest` naming the bad one."""
    return SendRequest(
        message_id=_engage_id("message_id", message_id),
        identifier=_identifier(mobile, email, app_alias, external_id, recipient_id),
        parameters=_parameters(parameters),
    )


def validate_idempotency_key(key: object) -> str:
    """A caller's key: a non-empty printable string of bounded length."""
    if not isinstance(key, str) or not key.strip():
        raise InvalidSendRequest("idempotency_key", "must be a non-empty string")
    if len(key) > MAX_IDENTIFIER_LENGTH or _CONTROL.search(key):
        raise InvalidSendRequest(
            "idempotency_key", f"must be printable and at most {MAX_IDENTIFIER_LENGTH} characters"
        )
    return key


def normalize_mobile(number: str) -> str:
    """Digits-only international form: ``+48 505-606-707`` -> ``48505606707``."""
    text = number.strip()
    if not text:
        raise InvalidSendRequest("mobile", "is empty")
    if text.startswith("+"):
        text = text[1:]
    elif text.startswith("00"):
        text = text[2:]
    elif text.startswith("0"):
        raise InvalidSendRequest(
            "mobile", "looks like a national number; give it with its country code (+48...)"
        )
    digits = _PHONE_SEPARATORS.sub("", text)
    if not digits.isascii() or not digits.isdigit():
        raise InvalidSendRequest("mobile", "may contain only digits, spaces, dashes, dots, ()")
    if digits.startswith("0"):
        raise InvalidSendRequest("mobile", "a country code cannot start with 0")
    if not MIN_MOBILE_DIGITS <= len(digits) <= MAX_MOBILE_DIGITS:
        raise InvalidSendRequest(
            "mobile",
            f"must have {MIN_MOBILE_DIGITS} to {MAX_MOBILE_DIGITS} digits with the country code, "
            f"got {len(digits)}",
        )
    return digits


def _engage_id(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidSendRequest(name, "must be a positive integer")
    if isinstance(value, str):
        if not value.strip().isdigit():
            raise InvalidSendRequest(name, "must be a positive integer")
        value = int(value)
    if not 0 < value <= MAX_ENGAGE_ID:
        raise InvalidSendRequest(name, "must be a positive 64-bit integer")
    return value


def _identifier(
    mobile: str | None,
    email: str | None,
    app_alias: str | None,
    external_id: str | None,
    recipient_id: object,
) -> Identifier:
    given = {
        name: value
        for name, value in (
            ("mobile", mobile),
            ("email", email),
            ("app_alias", app_alias),
            ("external_id", external_id),
            ("recipient_id", recipient_id),
        )
        if value is not None
    }
    if len(given) != 1:
        found = ", ".join(given) or "none"
        raise InvalidSendRequest(
            "recipient",
            "give exactly one of mobile, email, app_alias, external_id, recipient_id "
            f"(got {found})",
        )
    ((name, value),) = given.items()
    if name == "recipient_id":
        return Identifier("ID", str(_engage_id("recipient_id", value)))
    if not isinstance(value, str):
        raise InvalidSendRequest(name, "must be a string")
    if name == "mobile":
        return Identifier("MOBILE", normalize_mobile(value))
    if name == "email":
        address = value.strip()
        if len(address) > MAX_EMAIL_LENGTH or not _EMAIL.match(address):
            raise InvalidSendRequest("email", "is not an e-mail address")
        return Identifier("EMAIL", address)
    text = value.strip()
    if not text or len(text) > MAX_IDENTIFIER_LENGTH or _CONTROL.search(text):
        raise InvalidSendRequest(name, f"must be 1 to {MAX_IDENTIFIER_LENGTH} printable characters")
    return Identifier("APP_ALIAS" if name == "app_alias" else "EXTERNAL", text)


def _parameters(parameters: Mapping[str, str] | None) -> tuple[tuple[str, str], ...]:
    if parameters is None:
        return ()
    if not isinstance(parameters, Mapping):
        raise InvalidSendRequest("parameters", "must be a mapping of names to strings")
    if len(parameters) > MAX_PARAMETERS:
        raise InvalidSendRequest("parameters", f"at most {MAX_PARAMETERS} parameters")
    total = 0
    for name, value in parameters.items():
        if not isinstance(name, str) or not _PARAM_NAME.match(name):
            raise InvalidSendRequest(
                "parameters", f"name {name!r} must be a letter or _ then letters, digits, _.-"
            )
        if len(name) > MAX_PARAMETER_NAME_LENGTH:
            raise InvalidSendRequest("parameters", f"name {name[:20]!r}... is too long")
        if not isinstance(value, str):
            raise InvalidSendRequest(
                "parameters", f"value of {name!r} must be a string, got {type(value).__name__}"
            )
        if _UNSENDABLE.search(value):
            raise InvalidSendRequest("parameters", f"value of {name!r} has control characters")
        if len(value) > MAX_PARAMETER_VALUE_LENGTH:
            raise InvalidSendRequest(
                "parameters", f"value of {name!r} exceeds {MAX_PARAMETER_VALUE_LENGTH} characters"
            )
        total += len(name) + len(value)
    if total > MAX_PARAMETERS_TOTAL:
        raise InvalidSendRequest("parameters", f"exceed {MAX_PARAMETERS_TOTAL} characters in all")
    # Keep the caller's order: it is what Engage receives.
    return tuple(parameters.items())
