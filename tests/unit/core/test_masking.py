"""Masking of phone numbers and e-mail addresses."""

from __future__ import annotations

import pytest

from tasks.core.masking import (
    Masker,
    excerpt,
    mask_email,
    mask_known,
    mask_phone,
    mask_secret,
    mask_text,
    mask_value,
)


def test_phone_keeps_two_digits_each_side() -> None:
    """Only the country code's start and the last two digits stay."""
    assert mask_phone("+48 505 606 707") == "48*******07"


def test_email_keeps_first_letter_and_domain() -> None:
    """The local part is hidden."""
    assert mask_email("ann.smith@example.com") == "a***@example.com"


def test_free_text_is_masked() -> None:
    """Numbers and addresses inside error messages are masked; short numbers stay."""
    text = "Contact with identifier=48505606707 or ann@example.com (status 400) does not exist."
    assert mask_text(text) == (
        "Contact with identifier=48*******07 or a***@example.com (status 400) does not exist."
    )


def test_nested_values_are_masked() -> None:
    """Dicts and lists are walked; non-strings are kept."""
    data = {"identifier": {"value": "+48 505 606 707"}, "ids": [1, "x@example.org"]}
    assert mask_value(data) == {
        "identifier": {"value": "48*******07"},
        "ids": [1, "x***@example.org"],
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ann.kowalska@bücher.de", "a***@bücher.de"),
        ("józef.nowak@example.pl", "j***@example.pl"),
        ("用户@例子.广告", "用***@例子.广告"),
        ("<script>@x.io", "<***@x.io"),
        ('{"email":"ann@example.com"}', '{"email":"a***@example.com"}'),
        ("mailto:ann@example.com", "mailto:a***@example.com"),
        ("to ann@example.com.", "to a***@example.com."),
    ],
)
def test_any_email_shaped_text_is_masked(text: str, expected: str) -> None:
    """Unicode local parts and domains are masked like ASCII ones, whatever surrounds them."""
    assert mask_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "key f3-nonjson-1712345689 replayed",
        "task db39047d-7456-4863-a1b2-123456789012",
        "task 1f2e3d4c-1234-5678-9abc-def012345678 sent",
        "order_1234567890",
        "file report.20240115093000.csv",
        "path /v19/message/1234567890/send",
        "at 2024-01-15T10:00:00Z",
    ],
)
def test_digit_runs_inside_longer_tokens_stay_readable(text: str) -> None:
    """Keys, uuids, file names and paths keep their 7+ digit runs: they are ids, not numbers."""
    assert mask_text(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("call +48 505 606 707 now", "call 48*******07 now"),
        ("identifier=48505606707", "identifier=48*******07"),
        ("tel:+48505606707", "tel:48*******07"),
        ("numbers 48505606707, 48505606708.", "numbers 48*******07, 48*******08."),
        ("(+44) 7400-123456", "(44********56"),
        ("status 400 in 1234 ms", "status 400 in 1234 ms"),
    ],
)
def test_stand_alone_phone_numbers_are_masked(text: str, expected: str) -> None:
    """A digit run of 7+ digits that is a token of its own is masked; short runs are kept."""
    assert mask_text(text) == expected


def test_known_values_are_masked_wherever_they_appear() -> None:
    """mask_known masks the given values, whatever the pattern masking would think of them."""
    text = "Contact 48505606707 (Ann, code 9911) not found; key order-48505606707 kept"
    masked = mask_known(text, ["+48 505 606 707", "Ann", "9911"])
    assert masked == "Contact 48*******07 (***, code ***) not found; key order-48*******07 kept"


def test_known_number_is_masked_in_its_typed_and_its_digits_form() -> None:
    """A number given as typed is also found in the bare digits Engage writes."""
    masked = mask_known("got +48 505 606 707 as +48505606707", ["+48 505 606 707"])
    assert masked == "got 48*******07 as 48*******07"


def test_known_email_is_masked_in_any_case() -> None:
    """Engage may echo an address lower-cased: the match ignores case, also for non-ASCII."""
    masked = mask_known("no contact JÓZEF@Example.PL", ["józef@example.pl"])
    assert masked == "no contact J***@Example.PL"


def test_known_values_match_whole_words_only() -> None:
    """A first name does not mask the inside of other words."""
    assert mask_known("Ann: Annual report for Joanne", ["Ann"]) == "***: Annual report for Joanne"


def test_longer_known_value_is_masked_whole() -> None:
    """Where one value contains another, the longer one is masked as a whole."""
    assert mask_known("Ann Smith", ["Ann", "Ann Smith"]) == "***"


def test_short_known_values_are_not_searched_for() -> None:
    """Values under three characters would mask every "PL" or "7" in the text."""
    assert mask_known("PL 7 ok", ["PL", "7", ""]) == "PL 7 ok"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("ann@example.com", "a***@example.com"),
        ("+48 505 606 707", "48*******07"),
        ("Ann Smith", "***"),
        ("2024", "***"),
    ],
)
def test_secret_masked_form_depends_on_its_kind(value: str, expected: str) -> None:
    """Addresses and numbers keep their ends; any other private value is hidden whole."""
    assert mask_secret(value) == expected


def test_masker_masks_known_values_then_anything_number_or_address_shaped() -> None:
    """By value first (an id, a name), then by pattern: numbers and addresses it did not know."""
    mask = Masker(["cust-991", "Zebulon"])
    text = "id cust-991 for Zebulon, other 48600000001 and bob@example.com"
    assert mask(text) == "id *** for ***, other 48*******01 and b***@example.com"


def test_known_value_is_found_across_changed_whitespace() -> None:
    """An excerpt puts text on one line: a value with a line break or double space still matches."""
    assert Masker(["Jan  Kowalski"])("to Jan\nKowalski.") == "to ***."


def test_known_value_cut_short_by_an_excerpt_is_masked_as_far_as_it_got() -> None:
    """An excerpt that ends inside a value with spaces does not leave its first words readable."""
    assert Masker(["Jan Kowalski"])("hello Jan Kow...") == "hello ***..."


def test_number_cut_short_by_an_excerpt_is_masked() -> None:
    """The start of a known number before a cut is masked, even when fewer than 7 digits made it."""
    assert Masker(["48505606707"])("call +48 505...") == "call ***..."


def test_cut_after_unrelated_text_masks_nothing() -> None:
    """Text before a cut that begins no private value stays as it is."""
    assert Masker(["Jan Kowalski"])("Loading...") == "Loading..."


def test_excerpt_cuts_between_words_and_says_so() -> None:
    """A long text is cut at the last word boundary within the limit, then ``...``."""
    assert excerpt("Sign in to continue with 48505606707", 30) == "Sign in to continue with..."


def test_excerpt_never_cuts_inside_a_number_or_address() -> None:
    """A token that does not fit is left out whole, so no part of it shows."""
    assert excerpt('{"value":"ann@example.com"}', 20) == '{"value":...'


def test_excerpt_puts_the_text_on_one_line() -> None:
    """Runs of whitespace, line breaks included, become one space."""
    assert excerpt("502\n  Bad   Gateway", 100) == "502 Bad Gateway"


def test_ids_known_not_to_be_private_stay_readable() -> None:
    """A contact id the masker is told of is kept; other long digit runs are still masked."""
    mask = Masker([], readable=["1234567890"])
    assert (
        mask("recipient 1234567890, phone 48600000001") == "recipient 1234567890, phone 48*******01"
    )
