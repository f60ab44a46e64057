"""Validation of send requests at enqueue time."""

from __future__ import annotations

import re

import pytest

from tasks.core.errors import InvalidSendRequest
from tasks.core.numbers import NumberPolicy
from tasks.core.request import (
    Identifier,
    SendRequest,
    build_send_request,
    encoding_problem,
    validate_idempotency_key,
)


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


def test_national_numbers_follow_the_given_policy() -> None:
    """The number policy (from the settings) reaches the mobile number's validation."""
    request = build_send_request(1, mobile="07400 123456", numbers=NumberPolicy("GB"))
    assert request.identifier == Identifier("MOBILE", "447400123456")
    with pytest.raises(InvalidSendRequest, match="ENGAGE_DEFAULT_REGION"):
        build_send_request(1, mobile="07400 123456")


def test_internationalised_email_identifier_is_accepted() -> None:
    """An IDN domain and a non-ASCII local part make an e-mail identifier, masked in logs."""
    request = build_send_request(1, email="józef.nowak@bücher.de")
    assert request.identifier == Identifier("EMAIL", "józef.nowak@bücher.de")
    assert request.masked()["recipient"] == "EMAIL:j***@bücher.de"


@pytest.mark.parametrize("message_id", ["12", " 12 ", "0012", 12])
def test_message_id_accepts_ascii_digits_and_integers(message_id: object) -> None:
    """A string of ASCII digits, blanks around it, or an int is the id."""
    assert build_send_request(message_id, mobile="+48505606707").message_id == 12


@pytest.mark.parametrize(
    "message_id",
    [
        "\u0661\u0662",  # Arabic-Indic "12": int() takes it
        "\u00b2",  # superscript 2: isdigit() says yes, int() raises ValueError
        "\uff11\uff12",  # full-width "12"
        "+12",
        "1_000",
        "9" * 5000,  # int() refuses more than 4300 digits with ValueError
        "12\n",
    ],
)
def test_message_id_refuses_other_digits_without_a_traceback(message_id: str) -> None:
    """Only 0-9 count as digits; every refusal is an InvalidSendRequest naming message_id."""
    with pytest.raises(InvalidSendRequest) as caught:
        build_send_request(message_id, mobile="+48505606707")
    assert caught.value.field == "message_id"


@pytest.mark.parametrize("name", ["firstName\n", "first name", "firstName\x00", "ä"])
def test_parameter_names_must_match_in_full(name: str) -> None:
    """A trailing newline does not slip past the name pattern."""
    with pytest.raises(InvalidSendRequest, match="must be a letter") as caught:
        build_send_request(1, mobile="+48505606707", parameters={name: "x"})
    assert caught.value.field == "parameters"


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("a\x00b", "U+0000"),
        ("a\x0bb", "U+000B"),
        ("a\x7fb", "U+007F"),
        ("a\x85b", "U+0085"),
        ("a\ud83db", "U+D83D"),  # a lone surrogate: not encodable in UTF-8
        ("a\ufffeb", "U+FFFE"),
        ("a\uffffb", "U+FFFF"),
    ],
)
def test_parameter_values_xml_and_utf8_cannot_carry_are_refused(value: str, code: str) -> None:
    """Values stay sendable by SOAP (XML 1.0) and REST (UTF-8); the refusal says which character."""
    with pytest.raises(
        InvalidSendRequest, match=f"{code.replace('+', '[+]')} at index 1"
    ) as caught:
        build_send_request(1, mobile="+48505606707", parameters={"p": value})
    assert caught.value.field == "parameters"


@pytest.mark.parametrize(
    "value", ["tab\there", "two\nlines", "cr\r\nlf", "ż\u00a0€", "🙂 \U0001f600"]
)
def test_parameter_values_keep_text_xml_can_carry(value: str) -> None:
    """Tab, newlines, non-ASCII and astral characters are ordinary text."""
    request = build_send_request(1, mobile="+48505606707", parameters={"p": value})
    assert request.parameters == (("p", value),)


@pytest.mark.parametrize("field", ["app_alias", "external_id"])
@pytest.mark.parametrize("bad", ["\x00", "\x85", "\u2028", "\u2029", "\ud800", "\uffff", "\t"])
def test_identifiers_refuse_control_and_unencodable_characters(field: str, bad: str) -> None:
    """App aliases and external ids are printable UTF-8 on one line."""
    with pytest.raises(InvalidSendRequest, match="control, line-break or unencodable") as caught:
        build_send_request(1, **{field: f"ref{bad}42"})  # type: ignore[arg-type]
    assert caught.value.field == field


@pytest.mark.parametrize("key", ["order\x85-1", "order\u2028-1", "order\ud800-1", "order\x00-1"])
def test_idempotency_keys_refuse_control_and_unencodable_characters(key: str) -> None:
    """NEL, line separators and lone surrogates are refused, not passed on to Redis."""
    with pytest.raises(InvalidSendRequest, match="control, line-break or unencodable") as caught:
        validate_idempotency_key(key)
    assert caught.value.field == "idempotency_key"


def test_idempotency_keys_may_be_any_printable_text() -> None:
    """Non-ASCII keys are fine."""
    assert validate_idempotency_key("zamówienie-42:wysłane") == "zamówienie-42:wysłane"


def test_private_values_are_the_identifier_and_parameter_values() -> None:
    """What mask_known needs: the contact's identifier and every placeholder value."""
    request = build_send_request(1, email="ann@example.com", parameters={"a": "Ann", "b": "9911"})
    assert request.private_values() == ("ann@example.com", "Ann", "9911")


def test_a_contact_id_is_not_a_private_value() -> None:
    """Engage's own contact id is shown in logs; only parameter values are private."""
    request = build_send_request(1, recipient_id=33457, parameters={"a": "Ann"})
    assert request.private_values() == ("Ann",)


def test_a_valid_request_has_no_encoding_problem() -> None:
    """What enqueue accepts, both transports can carry (C1 and DEL included, for old requests)."""
    request = SendRequest(1, Identifier("MOBILE", "48505606707"), (("p", "tab\t\x85\x7f🙂"),))
    assert encoding_problem(request) is None


@pytest.mark.parametrize(
    ("identifier", "parameters", "problem"),
    [
        ("48505606707", (("p", "a\x00"),), "value of 'p' has .* \\(U\\+0000 at index 1\\)"),
        ("48505606707", (("p", "\ud800"),), "value of 'p' .*U\\+D800"),
        ("48505606707", (("p\x0b", "x"),), "parameter name .*U\\+000B"),
        ("4850560670\uffff", (), "identifier .*U\\+FFFF at index 10"),
    ],
)
def test_encoding_problem_names_what_no_transport_can_carry(
    identifier: str, parameters: tuple[tuple[str, str], ...], problem: str
) -> None:
    """A request queued before enqueue checked its text is described, not sent to fail."""
    request = SendRequest(1, Identifier("MOBILE", identifier), parameters)
    assert re.search(problem, encoding_problem(request) or "")
