"""Masking of phone numbers and e-mail addresses."""

from __future__ import annotations

from tasks.masking import mask_email, mask_phone, mask_text, mask_value


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
