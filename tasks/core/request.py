"""The validated description of one send, built at enqueue time from the caller's arguments."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict

from tasks.core.emails import normalize_email
from tasks.core.errors import InvalidSendRequest
from tasks.core.masking import mask_email, mask_phone
from tasks.core.numbers import NumberPolicy, normalize_mobile

#: Engage ids are signed 64-bit integers.
MAX_ENGAGE_ID = 2**63 - 1
#: Length limit for app aliases, external ids and idempotency keys.
MAX_IDENTIFIER_LENGTH = 255
#: Placeholders per message and their sizes; an SMS is short, these bound the task message size.
MAX_PARAMETERS = 50
MAX_PARAMETER_NAME_LENGTH = 100
MAX_PARAMETER_VALUE_LENGTH = 1000
MAX_PARAMETERS_TOTAL = 8000

IDENTIFIER_TYPES = ("MOBILE", "EMAIL", "APP_ALIAS", "EXTERNAL", "ID")

_PARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
# What neither transport can carry: characters outside XML 1.0's (C0 controls other than tab,
# newline and carriage return; U+FFFE, U+FFFF) and lone surrogates, which UTF-8 cannot encode.
_NOT_XML = re.compile(r"[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# What a parameter value may not hold: that, and the other controls (DEL, C1). Checked at enqueue
# whatever the transport, so a queued send stays sendable when ENGAGE_TRANSPORT becomes soap.
_UNSENDABLE = re.compile(r"[^\t\n\r\x20-\x7e\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# What identifiers and keys may not hold: all that, tab and line breaks too (U+2028, U+2029).
_UNPRINTABLE = re.compile(r"[^\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


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

    def private_values(self) -> tuple[str, ...]:
        """What must not reach logs in clear: the identifier and every parameter value.

        Hand them to :class:`tasks.core.masking.Masker` to mask a text by what it may contain. An
        Engage contact id is not personal (logs show it), so an ``ID`` identifier is left out.
        """
        identifier = () if self.identifier.type == "ID" else (self.identifier.value,)
        return identifier + tuple(value for _, value in self.parameters)


def build_send_request(
    message_id: object,
    *,
    mobile: str | None = None,
    email: str | None = None,
    app_alias: str | None = None,
    external_id: str | None = None,
    recipient_id: object = None,
    parameters: Mapping[str, str] | None = None,
    numbers: NumberPolicy | None = None,
) -> SendRequest:
    """Validate the caller's arguments; raise :class:`InvalidSendRequest` naming the bad one.

    ``numbers`` says how mobile numbers are read (default region, number types); the default
    policy takes international numbers of mobile types only.
    """
    return SendRequest(
        message_id=_engage_id("message_id", message_id),
        identifier=_identifier(
            mobile, email, app_alias, external_id, recipient_id, numbers=numbers
        ),
        parameters=_parameters(parameters),
    )


class RecipientFields(TypedDict, total=False):
    """The keyword arguments that name a send's recipient; exactly one is given (not None)."""

    mobile: str | None
    email: str | None
    app_alias: str | None
    external_id: str | None
    recipient_id: int | None


def build_identifier(
    *,
    mobile: str | None = None,
    email: str | None = None,
    app_alias: str | None = None,
    external_id: str | None = None,
    recipient_id: object = None,
    numbers: NumberPolicy | None = None,
) -> Identifier:
    """Exactly one identifier, validated and normalised as a send's (the opt-out list uses it)."""
    return _identifier(mobile, email, app_alias, external_id, recipient_id, numbers=numbers)


def validate_idempotency_key(key: object) -> str:
    """A caller's key: a non-empty printable string of bounded length."""
    if not isinstance(key, str) or not key.strip():
        raise InvalidSendRequest("idempotency_key", "must be a non-empty string")
    if len(key) > MAX_IDENTIFIER_LENGTH:
        raise InvalidSendRequest(
            "idempotency_key", f"must be at most {MAX_IDENTIFIER_LENGTH} characters"
        )
    _check_printable("idempotency_key", key)
    return key


def encoding_problem(request: SendRequest) -> str | None:
    """Why neither REST (UTF-8) nor SOAP (XML 1.0) can carry ``request``, or None if both can.

    Enqueue refuses such text since it checks for it; a request queued before then (or built
    without :func:`build_send_request`) may still hold some.
    """
    texts = [("identifier", request.identifier.value)]
    for name, value in request.parameters:
        texts += [("parameter name", name), (f"value of {name!r}", value)]
    for what, text in texts:
        bad = _NOT_XML.search(text)
        if bad:
            return f"{what} has a character XML or UTF-8 cannot carry ({_describe(bad)})"
    return None


def _engage_id(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidSendRequest(name, "must be a positive integer")
    if isinstance(value, str):
        text = value.strip(" \t")
        # ASCII only: str.isdigit() and int() also take "١٢" (Arabic-Indic) and isdigit() "²".
        if not (text.isascii() and text.isdigit()):
            raise InvalidSendRequest(name, "must be a positive integer (digits 0-9)")
        # Checked before int(), which refuses strings of more than 4300 digits with ValueError.
        if len(text.lstrip("0")) > len(str(MAX_ENGAGE_ID)):
            raise InvalidSendRequest(name, "must be a positive 64-bit integer")
        value = int(text)
    if not 0 < value <= MAX_ENGAGE_ID:
        raise InvalidSendRequest(name, "must be a positive 64-bit integer")
    return value


def _identifier(
    mobile: str | None,
    email: str | None,
    app_alias: str | None,
    external_id: str | None,
    recipient_id: object,
    *,
    numbers: NumberPolicy | None,
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
        return Identifier("MOBILE", normalize_mobile(value, numbers))
    if name == "email":
        return Identifier("EMAIL", normalize_email(value))
    text = value.strip(" \t")
    if not text or len(text) > MAX_IDENTIFIER_LENGTH:
        raise InvalidSendRequest(name, f"must be 1 to {MAX_IDENTIFIER_LENGTH} characters")
    _check_printable(name, text)
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
        # fullmatch: with match and $, "firstName\n" would pass ($ matches before a final \n).
        if not isinstance(name, str) or not _PARAM_NAME.fullmatch(name):
            raise InvalidSendRequest(
                "parameters", f"name {name!r} must be a letter or _ then letters, digits, _.-"
            )
        if len(name) > MAX_PARAMETER_NAME_LENGTH:
            raise InvalidSendRequest("parameters", f"name {name[:20]!r}... is too long")
        if not isinstance(value, str):
            raise InvalidSendRequest(
                "parameters", f"value of {name!r} must be a string, got {type(value).__name__}"
            )
        bad = _UNSENDABLE.search(value)
        if bad:
            raise InvalidSendRequest(
                "parameters",
                f"value of {name!r} has control characters or characters XML cannot carry "
                f"({_describe(bad)})",
            )
        if len(value) > MAX_PARAMETER_VALUE_LENGTH:
            raise InvalidSendRequest(
                "parameters", f"value of {name!r} exceeds {MAX_PARAMETER_VALUE_LENGTH} characters"
            )
        total += len(name) + len(value)
    if total > MAX_PARAMETERS_TOTAL:
        raise InvalidSendRequest("parameters", f"exceed {MAX_PARAMETERS_TOTAL} characters in all")
    # Keep the caller's order: it is what Engage receives.
    return tuple(parameters.items())


def _check_printable(name: str, text: str) -> None:
    bad = _UNPRINTABLE.search(text)
    if bad:
        raise InvalidSendRequest(
            name, f"has a control, line-break or unencodable character ({_describe(bad)})"
        )


def _describe(match: re.Match[str]) -> str:
    """Which character and where, without echoing the text (it may be personal)."""
    return f"U+{ord(match.group()):04X} at index {match.start()}"
