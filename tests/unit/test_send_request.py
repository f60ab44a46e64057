"""Validation of send requests at enqueue time."""

from __future__ import annotations

import pytest

from tasks.errors import InvalidSendRequest
from tasks.request import (
    Identifier,
    build_send_request,
    normalize_mobile,
    validate_idempotency_key,
)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("48505606707", "48505606707"),
        ("+48 505 606 707", "48505606707"),
        ("+48-505-606-707", "48505606707"),
        ("0048505606707", "48505606707"),
        ("+1 (415) 555-0100", "14155550100"),
    ],
)
def test_mobile_is_normalized_to_international_digits(given: str, expected: str) -> None:
    """Separators, a leading + and a 00 prefix are removed."""
    assert normalize_mobile(given) == expected


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ("0505606707", "country code"),
        ("+48 505 abc 707", "only digits"),
        ("+48 50", "8 to 15 digits"),
        ("+1234567890123456", "8 to 15 digits"),
        ("+0 505 606 707", "cannot start with 0"),
        ("", "empty"),
    ],
)
def test_impossible_mobile_numbers_are_rejected(given: str, problem: str) -> None:
    """What cannot be an international number is refused with the reason."""
    with pytest.raises(InvalidSendRequest, match=problem) as caught:
        normalize_mobile(given)
    assert caught.value.field == "mobile"


def test_request_carries_normalized_identifier_and_parameters_in_order() -> None:
    """The request holds what Engage will receive."""
    request = build_send_request("23541", mobile="+48 505 606 707", parameters={"b": "2", "a": "1"})
    assert request.message_id == 23541
    assert request.identifier == Identifier("MOBILE", "48505606707")
    assert request.parameters == (("b", "2"), ("a", "1"))


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"email": " ann@example.com "}, Identifier("EMAIL", "ann@example.com")),
        ({"app_alias": "alias-1"}, Identifier("APP_ALIAS", "alias-1")),
        ({"external_id": "crm-42"}, Identifier("EXTERNAL", "crm-42")),
        ({"recipient_id": 33457}, Identifier("ID", "33457")),
    ],
)
def test_every_identifier_type_is_accepted(kwargs: dict[str, object], expected: Identifier) -> None:
    """E-mail, app alias, external id and a known contact id each make an identifier."""
    assert build_send_request(1, **kwargs).identifier == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"mobile": "+48505606707", "email": "a@example.com"}],
)
def test_exactly_one_identifier_is_required(kwargs: dict[str, str]) -> None:
    """None or two identifiers is an error naming the choice."""
    with pytest.raises(InvalidSendRequest, match="exactly one") as caught:
        build_send_request(1, **kwargs)  # type: ignore[arg-type]
    assert caught.value.field == "recipient"


@pytest.mark.parametrize("message_id", [0, -5, "abc", 1.5, True, None, 2**63])
def test_message_id_must_be_a_positive_64_bit_integer(message_id: object) -> None:
    """Zero, negatives, fractions, booleans and overflow are refused."""
    with pytest.raises(InvalidSendRequest) as caught:
        build_send_request(message_id, mobile="+48505606707")
    assert caught.value.field == "message_id"


@pytest.mark.parametrize(
    ("parameters", "problem"),
    [
        ({"firstName": 5}, "must be a string"),
        ({"1st": "x"}, "must be a letter"),
        ({"name": "x" * 1001}, "exceeds 1000"),
        ({f"p{i}": "x" for i in range(51)}, "at most 50"),
        ({"name": "bell\x07"}, "control characters"),
        ([("a", "b")], "mapping"),
    ],
)
def test_bad_parameters_are_rejected(parameters: object, problem: str) -> None:
    """Parameters must be a bounded mapping of names to strings."""
    with pytest.raises(InvalidSendRequest, match=problem):
        build_send_request(1, mobile="+48505606707", parameters=parameters)  # type: ignore[arg-type]


def test_bad_email_is_rejected() -> None:
    """An e-mail identifier must look like an address."""
    with pytest.raises(InvalidSendRequest, match="not an e-mail"):
        build_send_request(1, email="ann-at-example.com")


def test_fingerprint_ignores_parameter_order_but_not_values() -> None:
    """The same request in another parameter order is the same request."""
    a = build_send_request(1, mobile="+48505606707", parameters={"a": "1", "b": "2"})
    b = build_send_request(1, mobile="48505606707", parameters={"b": "2", "a": "1"})
    c = build_send_request(1, mobile="48505606707", parameters={"a": "1", "b": "3"})
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


def test_masked_form_hides_the_number() -> None:
    """The description for logs and Flower carries no full number and no parameter values."""
    masked = build_send_request(1, mobile="+48505606707", parameters={"code": "9911"}).masked()
    assert masked == {"message_id": 1, "recipient": "MOBILE:48*******07", "parameters": ["code"]}


def test_round_trip_through_json_form() -> None:
    """to_dict/from_dict keep the request intact."""
    request = build_send_request(7, email="a@example.com", parameters={"x": "y"})
    assert type(request).from_dict(request.to_dict()) == request


@pytest.mark.parametrize("key", ["", "   ", "x" * 256, "tab\there", 42])
def test_bad_idempotency_keys_are_rejected(key: object) -> None:
    """Keys are non-empty printable strings of bounded length."""
    with pytest.raises(InvalidSendRequest):
        validate_idempotency_key(key)
