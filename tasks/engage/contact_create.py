"""``contact/create`` (REST) and ``contactCreate`` (SOAP): what both transports share.

Engage answers the new contact (200, with its ``contactId``), or 400 ``OBJECT_ALREADY_EXISTS``
when the identifier is taken: another writer created it first, and the caller looks it up again
(:func:`already_exists`). The contact object names the identifier by its own field.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from tasks.core.errors import EngageAPIError, EngageError
from tasks.core.request import Identifier
from tasks.engage import answers
from tasks.engage.base import Contact
from tasks.engage.soap_envelope import UnreadableAnswer, build_envelope

OPERATION = "contact/create"
#: The contact object's field for each identifier type (a contact id names an existing one).
CONTACT_FIELDS = {
    "MOBILE": "mobileNumber",
    "EMAIL": "emailAddress",
    "APP_ALIAS": "applicationAlias",
    "EXTERNAL": "identifier",
}
ALREADY_EXISTS = "OBJECT_ALREADY_EXISTS"


def contact_object(identifier: Identifier) -> dict[str, str]:
    """The REST body: ``{"mobileNumber": "48505606707"}`` and the like."""
    field = CONTACT_FIELDS.get(identifier.type)
    if field is None:
        raise ValueError(f"a contact cannot be created from a {identifier.type} identifier")
    return {field: identifier.value}


def envelope(identifier: Identifier) -> bytes:
    """``contactCreate(contact{mobileNumber | emailAddress | ...})``."""
    ((field, value),) = contact_object(identifier).items()
    return build_envelope("contactCreate", [("contact", [(field, value)])])


def contact_from_soap(element: ET.Element) -> Contact:
    """The Contact in a contactCreate answer: ``<return><id>`` (or ``contactId``)."""
    name = element.tag.rpartition("}")[2]
    if name != "contactCreateResponse":
        raise UnreadableAnswer(f"<{name}> answered, not <contactCreateResponse>")
    holder = next((c for c in element if c.tag.rpartition("}")[2] == "return"), element)
    raw = {c.tag.rpartition("}")[2]: c.text or "" for c in holder if len(c) == 0}
    raw_id = raw.get("id", raw.get("contactId"))
    if raw_id is None:
        raise UnreadableAnswer("answer has no contact id")
    try:
        return Contact(contact_id=answers.contact_id(raw_id), fields=raw)
    except ValueError as err:
        raise UnreadableAnswer(str(err)) from None


def already_exists(err: EngageError) -> bool:
    """Engage refused to create the contact because one with this identifier exists."""
    return isinstance(err, EngageAPIError) and err.error_code == ALREADY_EXISTS
