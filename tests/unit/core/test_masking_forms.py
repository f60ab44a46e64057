"""A private value is masked in every form a text may write it, and ordinary words stay readable."""

from __future__ import annotations

import unicodedata

import pytest

from tasks.core.errors import EngageClientError
from tasks.core.masking import Masker, mask_known


@pytest.mark.parametrize(
    ("value", "text", "expected"),
    [
        # JSON escapes, as in a JSON body quoted raw (ensure_ascii writers).
        ("Zoë Nowak", 'body {"message":"no Zo\\u00eb Nowak"}', 'body {"message":"no ***"}'),
        ("O'Brien", '{"v":"O\\u0027Brien"}', '{"v":"***"}'),
        # HTML character references, as in a proxy's page.
        ("O'Brien", "Sign in, O&#39;Brien", "Sign in, ***"),
        ("O'Brien", "Sign in, O&#x27;Brien", "Sign in, ***"),
        ("O'Brien", "Sign in, O&apos;Brien", "Sign in, ***"),
        ("ann@example.com", "for ann&#64;example.com", "for a***@example.com"),
        # URL encoding, as in a redirect's query or a logged URL.
        ("ann@example.com", "to ann%40example.com", "to a***@example.com"),
        ("Ann Smith", "?name=Ann+Smith&x=1", "?name=***&x=1"),
        ("Zoë", "?n=Zo%C3%AB", "?n=***"),
        # Another Unicode normal form, either way round.
        ("Zoë", "hello " + unicodedata.normalize("NFD", "Zoë") + "!", "hello ***!"),
        (unicodedata.normalize("NFD", "Zoë"), "hello Zoë!", "hello ***!"),
        # Digits grouped otherwise.
        ("918273", "your code 918 273 expired", "your code *** expired"),
        ("918273", "code 918-273.", "code ***."),
        ("+48 505 606 707", "to 48-505-606-707", "to 48*******07"),
    ],
)
def test_value_is_masked_in_any_form(value: str, text: str, expected: str) -> None:
    """Escapes, entities, URL encoding, NFD and regrouped digits hide no value."""
    assert Masker([value])(text) == expected


def test_other_text_keeps_its_escapes() -> None:
    """Only the value's span is replaced: the rest of the text is left as it was written."""
    assert mask_known("a &amp; b \\u00eb O&#39;Brien", ["O'Brien"]) == "a &amp; b \\u00eb ***"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Invalid value 'Jo'.", "Invalid value '***'."),
        ('{"value": "Jo"}', '{"value": "***"}'),
        ("Jo", "***"),
        ("?code=7&x=1", "?code=***&x=1"),
    ],
)
def test_short_values_are_masked_where_they_stand_as_a_value(text: str, expected: str) -> None:
    """A value under three characters is not stored in clear where an echo quotes it."""
    assert mask_known(text, ["Jo", "7"]) == expected


def test_short_values_elsewhere_stay_readable() -> None:
    """Every "Jo" or "7" of a text is not masked: the text would not be readable."""
    assert mask_known("Jo 7 Jones 17 of 7", ["Jo", "7"]) == "Jo 7 Jones 17 of 7"


def test_common_word_value_does_not_mask_the_word_everywhere() -> None:
    """A parameter whose value is "value" masks the quoted echo, not the word in the message."""
    masked = Masker(["value"])("Invalid value 'value' for parameter value.")
    assert masked == "Invalid value '***' for parameter value."


def test_short_value_in_an_error_field_is_masked() -> None:
    """Engage's error body quoting a short parameter value (``value``) keeps no clear copy."""
    err = EngageClientError(
        "message/sendSingle",
        status=400,
        error_code="INVALID_PARAMETER",
        message="Invalid value 'Jo'.",
        details={"value": "Jo", "parameterName": "firstName"},
    )
    shown = err.masked(Masker(["Jo"]))
    assert shown.details == {"value": "***", "parameterName": "firstName"}
    assert "Jo" not in str(shown)
