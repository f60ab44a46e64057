"""Mobile numbers: parsed with phonenumbers, refused with the reason, sent as E.164 digits.

The numbers are phonenumbers' own example numbers (``example_number_for_type``) in the formats
people type them, so the table holds numbers the library's data says exist.
"""

from __future__ import annotations

import pytest

from tasks.core.errors import ConfigurationError, InvalidSendRequest
from tasks.core.numbers import DEFAULT_NUMBER_TYPES, NumberPolicy, normalize_mobile
from tasks.core.settings import load_settings

#: phonenumbers reads these as 0-9; Engage's form is ASCII, so they are refused up front.
ARABIC_INDIC_48505606707 = "".join(chr(0x660 + int(digit)) for digit in "48505606707")


@pytest.mark.parametrize(
    ("given", "region", "expected"),
    [
        # + or 00, with the separators people type.
        ("+48 512 345 678", None, "48512345678"),
        ("+48-512-345-678", None, "48512345678"),
        ("+48.512.345.678", None, "48512345678"),
        ("+48\u00a0512\u00a0345\u00a0678", None, "48512345678"),
        ("0048 512 345 678", None, "48512345678"),
        ("+49 1512 3456789", None, "4915123456789"),
        ("0049 151 23456789", None, "4915123456789"),
        ("+44 7400 123456", None, "447400123456"),
        ("+1 (201) 555-0123", None, "12015550123"),
        ("+1 201.555.0123", None, "12015550123"),
        ("001 201 555 0123", None, "12015550123"),
        ("+33 6 12 34 56 78", None, "33612345678"),
        ("+91 81234 56789", None, "918123456789"),
        ("+55 11 96123-4567", None, "5511961234567"),
        ("+39 312 345 6789", None, "393123456789"),
        ("+81 90-1234-5678", None, "819012345678"),
        ("+61 412 345 678", None, "61412345678"),
        ("+380 50 123 4567", None, "380501234567"),
        ("+41 78 123 45 67", None, "41781234567"),
        # A trunk prefix in parentheses after the country code is dropped.
        ("+44 (0)7400 123456", None, "447400123456"),
        ("+49 (0)1512 3456789", None, "4915123456789"),
        ("+33 (0)6 12 34 56 78", None, "33612345678"),
        # Engage's own digits-only form.
        ("48512345678", None, "48512345678"),
        # National formats with a default region; the trunk prefix is dropped.
        ("512 345 678", "PL", "48512345678"),
        ("01512 3456789", "DE", "4915123456789"),
        ("01512/3456789", "DE", "4915123456789"),
        ("07400 123456", "GB", "447400123456"),
        ("(201) 555-0123", "US", "12015550123"),
        ("201-555-0123", "US", "12015550123"),
        ("06 12 34 56 78", "FR", "33612345678"),
        ("081234 56789", "IN", "918123456789"),
        ("(11) 96123-4567", "BR", "5511961234567"),
        ("090-1234-5678", "JP", "819012345678"),
        ("0412 345 678", "AU", "61412345678"),
        # With a default region: its own country code without +, and other countries' numbers.
        ("48512345678", "PL", "48512345678"),
        ("+44 7400 123456", "PL", "447400123456"),
        ("0044 7400 123456", "US", "447400123456"),
        ("011 44 7400 123456", "US", "447400123456"),
    ],
)
def test_numbers_are_normalized_to_international_digits(
    given: str, region: str | None, expected: str
) -> None:
    """Every accepted format becomes the E.164 number without its +."""
    assert normalize_mobile(given, NumberPolicy(default_region=region)) == expected


@pytest.mark.parametrize(
    ("given", "region", "problem"),
    [
        # National formats without a default region.
        ("(201) 555-0123", None, "national number.*ENGAGE_DEFAULT_REGION"),
        ("(555) 010-0000", None, "national number.*ENGAGE_DEFAULT_REGION"),
        ("0512 345 678", None, "national number"),
        ("07400 123456", None, "national number"),
        ("512 345 678", None, "national number"),
        # Unassigned country codes.
        ("+999 1234 5678", None, "no country code in use"),
        ("+0 505 606 707", None, "no country code in use"),
        # Wrong lengths and unused ranges.
        ("+48 512 345", None, "too short for a \\+48 mobile"),
        ("+44 7400 12345", None, "too short for a \\+44 mobile"),
        ("+48 512 345 678 9", None, "too long for a \\+48 mobile"),
        ("+1234567890123456", None, "too long"),
        ("+48 999 888 777", None, "not a valid \\+48 number"),
        ("+1 555 010 0000", None, "not a valid \\+1 number"),
        ("(555) 010-0000", "US", "not a valid \\+1 number"),
        ("12", None, "not a phone number"),
        # Landlines cannot receive an SMS.
        ("+48 12 345 67 89", None, "fixed_line"),
        ("+49 30 123456", None, "fixed_line"),
        ("+44 121 234 5678", None, "fixed_line"),
        ("01 23 45 67 89", "FR", "fixed_line"),
        # Neither are toll-free and personal numbers, by default.
        ("+1 800 234 5678", None, "toll_free"),
        ("+44 70 1234 5678", None, "personal_number"),
        # Letters (phonenumbers would read them as a keypad's), other digits, URIs, extensions.
        ("+48 505 abc 707", None, "only digits"),
        ("+48 505 606 707 ext. 12", None, "only digits"),
        ("tel:+48505606707", None, "only digits"),
        ("+" + ARABIC_INDIC_48505606707, None, "only digits"),
        ("48+505606707", None, "only digits"),
        ("", None, "empty"),
        ("()", None, "no digits"),
    ],
)
def test_impossible_numbers_are_refused_with_the_reason(
    given: str, region: str | None, problem: str
) -> None:
    """Each refusal names the field ``mobile`` and says what is wrong."""
    with pytest.raises(InvalidSendRequest, match=problem) as caught:
        normalize_mobile(given, NumberPolicy(default_region=region))
    assert caught.value.field == "mobile"


def test_the_default_policy_is_international_numbers_of_mobile_types() -> None:
    """No policy given: no default region, mobile and fixed-line-or-mobile numbers only."""
    assert normalize_mobile("+1 201 555 0123") == "12015550123"
    assert NumberPolicy() == NumberPolicy(None, frozenset({"mobile", "fixed_line_or_mobile"}))
    with pytest.raises(InvalidSendRequest, match="national"):
        normalize_mobile("07400 123456")


def test_landlines_are_accepted_when_the_policy_allows_them() -> None:
    """ENGAGE_NUMBER_TYPES can opt in to fixed lines (say, for landline SMS gateways)."""
    policy = NumberPolicy(types=DEFAULT_NUMBER_TYPES | {"fixed_line"})
    assert normalize_mobile("+48 12 345 67 89", policy) == "48123456789"


def test_italian_leading_zero_is_kept() -> None:
    """E.164 keeps the 0 of Italian landlines that national_number alone would lose."""
    policy = NumberPolicy(types=frozenset({"fixed_line"}))
    assert normalize_mobile("+39 02 1234 5678", policy) == "390212345678"


def test_only_the_policy_types_are_accepted() -> None:
    """A policy of fixed lines only refuses mobiles, naming the accepted types."""
    with pytest.raises(InvalidSendRequest, match=r"mobile number.*accepted: fixed_line;"):
        normalize_mobile("+48 512 345 678", NumberPolicy(types=frozenset({"fixed_line"})))


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, NumberPolicy()),
        ({"ENGAGE_DEFAULT_REGION": "pl"}, NumberPolicy(default_region="PL")),
        (
            {"ENGAGE_NUMBER_TYPES": "Mobile, fixed_line_or_mobile,VOIP"},
            NumberPolicy(types=frozenset({"mobile", "fixed_line_or_mobile", "voip"})),
        ),
    ],
)
def test_number_settings_are_read_from_the_environment(
    env: dict[str, str], expected: NumberPolicy
) -> None:
    """ENGAGE_DEFAULT_REGION (any case) and ENGAGE_NUMBER_TYPES (a list) make the policy."""
    assert load_settings(env).numbers == expected


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ENGAGE_DEFAULT_REGION", "XX"),
        ("ENGAGE_DEFAULT_REGION", "Poland"),
        ("ENGAGE_DEFAULT_REGION", "001"),
        ("ENGAGE_NUMBER_TYPES", "mobile,sms"),
        ("ENGAGE_NUMBER_TYPES", ","),
    ],
)
def test_malformed_number_settings_are_named(name: str, value: str) -> None:
    """An unknown region or number type stops the process with the variable's name."""
    with pytest.raises(ConfigurationError) as caught:
        load_settings({name: value})
    assert caught.value.setting == name
