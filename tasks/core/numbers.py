"""Mobile numbers: parsed with phonenumbers (Google's libphonenumber data), checked, normalised.

Engage takes a number in its digits-only international form (E.164 without the ``+``). Which
inputs are read how:

- ``+48 505 606 707``, ``0048 505-606-707``: international (``+`` or ``00``);
- ``48505606707``: a bare run of digits is already Engage's form, read as international (it is
  what this package stores and prints), unless a default region is set;
- ``0505 606 707``, ``(555) 010-0000``, ``505 606 707``: national, accepted only with a default
  region (``ENGAGE_DEFAULT_REGION``), whose trunk prefix is dropped; with a default region, a bare
  run of digits is read as that region reads it (its own country code may lead).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType
from phonenumbers import ValidationResult as Possible

from tasks.core.errors import InvalidSendRequest

#: Regions a default region may name (two-letter ISO 3166 codes phonenumbers has data for).
REGIONS = frozenset(phonenumbers.SUPPORTED_REGIONS)

#: The number types phonenumbers tells apart, by the names ``ENGAGE_NUMBER_TYPES`` uses.
NUMBER_TYPES = {
    "mobile": PhoneNumberType.MOBILE,
    "fixed_line_or_mobile": PhoneNumberType.FIXED_LINE_OR_MOBILE,
    "fixed_line": PhoneNumberType.FIXED_LINE,
    "voip": PhoneNumberType.VOIP,
    "personal_number": PhoneNumberType.PERSONAL_NUMBER,
    "pager": PhoneNumberType.PAGER,
    "toll_free": PhoneNumberType.TOLL_FREE,
    "premium_rate": PhoneNumberType.PREMIUM_RATE,
    "shared_cost": PhoneNumberType.SHARED_COST,
    "uan": PhoneNumberType.UAN,
    "voicemail": PhoneNumberType.VOICEMAIL,
}
_TYPE_NAMES = {value: name for name, value in NUMBER_TYPES.items()}

#: Types accepted unless ``ENGAGE_NUMBER_TYPES`` says otherwise. SMS reach mobiles. Where a
#: numbering plan does not tell mobiles from landlines (the US, Canada and the rest of +1, some
#: others) every number is ``fixed_line_or_mobile``: refusing those would refuse all of them.
#: ``fixed_line`` is refused: most landlines drop an SMS (a few read it out, billed all the same),
#: and a landline in a contact's mobile field is usually their office number typed in the wrong
#: place. VoIP and personal numbers take SMS only sometimes, pagers and service numbers hardly
#: ever: they are opt-in.
DEFAULT_NUMBER_TYPES = frozenset({"mobile", "fixed_line_or_mobile"})

# What people type around the digits: spaces (also no-break), dashes, dots, slashes, parentheses.
# Letters are refused here: phonenumbers would read them as a keypad's (ABC -> 2).
_TYPED = re.compile(r"\+?[0-9 \-().\u00a0/]+")
_NOT_DIGIT = re.compile(r"[^0-9]")

_UNPARSABLE = {
    NumberParseException.INVALID_COUNTRY_CODE: "has no country code in use (unassigned code)",
    NumberParseException.NOT_A_NUMBER: "is not a phone number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "is too short after the international prefix",
    NumberParseException.TOO_SHORT_NSN: "is too short to be a phone number",
    NumberParseException.TOO_LONG: "is too long to be a phone number",
}
_IMPOSSIBLE = {
    Possible.INVALID_COUNTRY_CODE: "has no country code in use (unassigned code)",
    Possible.TOO_SHORT: "is too short for a +{cc} number",
    Possible.TOO_LONG: "is too long for a +{cc} number",
    Possible.INVALID_LENGTH: "has a length no +{cc} number has",
    Possible.IS_POSSIBLE_LOCAL_ONLY: "is a local number: give it with its area code",
}

_MOBILE_LENGTH = {
    Possible.TOO_SHORT: "is too short for a +{cc} mobile number",
    Possible.TOO_LONG: "is too long for a +{cc} mobile number",
}


@dataclass(frozen=True)
class NumberPolicy:
    """How national numbers are read and which number types may receive an SMS."""

    #: Region of national numbers (``PL``); None: every number needs its country code.
    default_region: str | None = None
    #: Names from :data:`NUMBER_TYPES`.
    types: frozenset[str] = DEFAULT_NUMBER_TYPES


def normalize_mobile(number: str, policy: NumberPolicy | None = None) -> str:
    """Engage's digits-only international form: ``+48 505-606-707`` -> ``48505606707``."""
    policy = policy or NumberPolicy()
    text = number.strip(" \t")
    if not text:
        raise InvalidSendRequest("mobile", "is empty")
    if not _TYPED.fullmatch(text):
        raise InvalidSendRequest(
            "mobile", "may contain only digits, spaces, dashes, dots, slashes, () and a leading +"
        )
    parsed = _parse(text, policy.default_region)
    possible = phonenumbers.is_possible_number_with_reason(parsed)
    if possible != Possible.IS_POSSIBLE:
        raise InvalidSendRequest("mobile", _IMPOSSIBLE[possible].format(cc=parsed.country_code))
    if not phonenumbers.is_valid_number(parsed):
        # Lengths of landlines and service numbers make most wrong lengths possible; measured
        # against the country's mobile numbers, "too short" says what went wrong.
        length = phonenumbers.is_possible_number_for_type_with_reason(
            parsed, PhoneNumberType.MOBILE
        )
        problem = _MOBILE_LENGTH.get(length, "is not a valid +{cc} number (no such number range)")
        raise InvalidSendRequest("mobile", problem.format(cc=parsed.country_code))
    kind = _TYPE_NAMES.get(phonenumbers.number_type(parsed), "unknown")
    if kind not in policy.types:
        raise InvalidSendRequest(
            "mobile",
            f"is a {kind} number, which cannot receive an SMS "
            f"(accepted: {', '.join(sorted(policy.types))}; see ENGAGE_NUMBER_TYPES)",
        )
    # E.164 keeps Italy's leading zero (+39 06...), which national_number alone would drop.
    return phonenumbers.format_number(parsed, PhoneNumberFormat.E164).removeprefix("+")


def _parse(text: str, region: str | None) -> phonenumbers.PhoneNumber:
    digits = _NOT_DIGIT.sub("", text)
    if not digits:
        raise InvalidSendRequest("mobile", "has no digits")
    if text.startswith("+"):
        international = text
    elif digits.startswith("00"):
        # The ITU's international prefix, used across most of the world whatever the region.
        international = "+" + digits[2:]
    elif region is not None:
        international = None
    elif text == digits and not digits.startswith("0"):
        international = "+" + digits
    else:
        raise InvalidSendRequest(
            "mobile",
            "looks like a national number: give it with its country code (+48 ...), "
            "or set ENGAGE_DEFAULT_REGION",
        )
    try:
        if international is not None:
            return phonenumbers.parse(international, None)
        return phonenumbers.parse(text, region)
    except NumberParseException as err:
        problem = _UNPARSABLE.get(err.error_type, "is not a phone number")
        raise InvalidSendRequest("mobile", problem) from None
