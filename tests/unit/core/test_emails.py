"""E-mail identifiers: a pragmatic syntax check that takes internationalised addresses."""

from __future__ import annotations

import pytest

from tasks.core.emails import normalize_email
from tasks.core.errors import InvalidSendRequest


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("ann@example.com", "ann@example.com"),
        (" ann@example.com\t", "ann@example.com"),
        ("ann+tag@example.co.uk", "ann+tag@example.co.uk"),
        ("o'brien@example.ie", "o'brien@example.ie"),
        ("Ann.Smith@Example.COM", "Ann.Smith@Example.COM"),
        ("1234@example.com", "1234@example.com"),
        ("ann.kowalska@bücher.de", "ann.kowalska@bücher.de"),
        ("ann@xn--bcher-kva.de", "ann@xn--bcher-kva.de"),
        ("józef.nowak@example.pl", "józef.nowak@example.pl"),
        ("用户@例子.广告", "用户@例子.广告"),
        ("पेपर@उदाहरण.भारत", "पेपर@उदाहरण.भारत"),
    ],
)
def test_addresses_are_accepted_as_given(given: str, expected: str) -> None:
    """ASCII and internationalised addresses pass, kept as written less surrounding blanks."""
    assert normalize_email(given) == expected


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        # Control, format and separator characters, anywhere.
        ("ann@exa\x00mple.com", "U\\+0000"),
        ("ann@example.com\r\nBcc: eve@example.com", "U\\+000D"),
        ("ann@example.com\n", "U\\+000A"),
        ("ann\x85@example.com", "U\\+0085"),
        ("ann\u2028@example.com", "U\\+2028"),
        ("ann\u202e@example.com", "U\\+202E"),
        ("ann\ud800@example.com", "U\\+D800"),
        ("ann@ex\ufffeample.com", "U\\+FFFE"),
        ("ann smith@example.com", "U\\+0020"),
        # Shape.
        ("ann-at-example.com", "not an e-mail address"),
        ("@example.com", "not an e-mail address"),
        ("ann@", "not an e-mail address"),
        ("ann@localhost", "needs a domain with a dot"),
        ("ann@@example.com", "not allowed before the @"),
        ("<script>@x.io", "not allowed before the @"),
        ("ann(comment)@example.com", "not allowed before the @"),
        (".ann@example.com", "dot"),
        ("ann.@example.com", "dot"),
        ("an..n@example.com", "two dots"),
        ("ann@example..com", "empty part"),
        ("ann@example.com.", "empty part"),
        ("ann@-example.com", "inner hyphens"),
        ("ann@exa_mple.com", "inner hyphens"),
        ("ann@[192.0.2.1]", "inner hyphens"),
        ("ann@192.0.2.1", "numeric top-level domain"),
        # Lengths (in bytes, and a label in its xn-- form).
        ("a" * 65 + "@example.com", "64 bytes"),
        ("ż" * 33 + "@example.com", "64 bytes"),
        ("ann@" + "b" * 64 + ".com", "longer than 63"),
        ("ann@" + "ü" * 60 + ".de", "longer than 63"),
        ("ann@" + ("b" * 60 + ".") * 5 + "com", "254 bytes"),
    ],
)
def test_malformed_addresses_are_refused_with_the_reason(given: str, problem: str) -> None:
    """Each refusal names the field ``email`` and says what is wrong."""
    with pytest.raises(InvalidSendRequest, match=problem) as caught:
        normalize_email(given)
    assert caught.value.field == "email"
