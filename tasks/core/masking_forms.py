"""Where a known private value stands in a text, in whatever form the text wrote it.

Engage, and whatever stands in front of it, may echo a value in another form than it was sent:
JSON escapes (``Zo\\u00eb``), HTML character references (``O&#39;Brien``, ``ann&#64;x.io``),
URL encoding (``ann%40x.io``, ``Ann+Smith``), Unicode in another normal form (NFD), other case,
other whitespace, digits grouped otherwise (``918 273`` for ``918273``). :func:`plain` reads a
text into one plain form in which each character remembers the span of the original it came
from; :class:`KnownValues` searches that form and returns the original spans to mask.

Which values are searched for where (the rule :mod:`tasks.core.masking` documents):

- a value of :data:`MIN_KNOWN_LENGTH` characters or more, not a :data:`COMMON_WORDS` word, is
  found anywhere it stands as a whole word;
- a shorter value (``Jo``, ``7``) or a common word (``value``, ``test``) is found only where it
  stands as a value: the whole text, between quotes, or after ``=``. Masking every ``7`` or
  every ``value`` in a text would leave nothing readable, and it is in those places that an
  echo quotes what was sent (``Invalid value 'Jo'.``, ``{"value": "Jo"}``, ``?code=7``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from html.entities import html5

#: Values shorter than this are found only where they stand as a value (see the module's rule).
MIN_KNOWN_LENGTH = 3
#: Words that make up the texts we mask (Engage's error messages, HTTP, this package's own
#: texts): a parameter whose value is one of them is masked only where it stands as a value.
COMMON_WORDS = frozenset(
    {
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "can",
        "code",
        "contact",
        "does",
        "error",
        "exist",
        "false",
        "for",
        "from",
        "has",
        "http",
        "https",
        "id",
        "identifier",
        "in",
        "invalid",
        "is",
        "it",
        "message",
        "missing",
        "name",
        "no",
        "none",
        "not",
        "null",
        "object",
        "of",
        "ok",
        "on",
        "or",
        "parameter",
        "request",
        "server",
        "sms",
        "test",
        "the",
        "this",
        "to",
        "true",
        "type",
        "unknown",
        "value",
        "with",
        "yes",
    }
)
#: Separators people type between the digits of a number or a code.
DIGIT_SEPARATORS = r"[\s\-.()/]{0,2}"

# Escapes a text may carry a value in, and whitespace (read as one space).
_FORMS = re.compile(
    r"&#(?P<dec>[0-9]{1,7});?"
    r"|&#[xX](?P<hex>[0-9a-fA-F]{1,6});?"
    r"|&(?P<name>[A-Za-z][A-Za-z0-9]{1,31};)"
    r"|\\u(?P<u>[0-9a-fA-F]{4})"
    r"|\\(?P<esc>[\"\\/bfnrt])"
    r"|(?P<pct>(?:%[0-9a-fA-F]{2})+)"
    r"|(?<=[^\W\d_])(?P<plus>\+)(?=[^\W\d_])"  # a query string's space, between letters
    r"|(?P<space>\s+)"
)
# What makes an ASCII text differ from its plain form beyond case: an escape, a run of
# whitespace, whitespace other than a space.
_NOT_PLAIN_ASCII = re.compile(r"[&\\%+]|\s\s|[^\S ]")
_JSON_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": " ", "f": " ", "n": " ", "r": " ", "t": " "}
_DIGIT_VALUE = re.compile(r"\+?[\d \-().\u00a0/]+")
_NOT_DIGIT = re.compile(r"\D")
_QUOTES_BEFORE = "'\"\u2018\u201c\u00ab`"
_QUOTES_AFTER = "'\"\u2019\u201d\u00bb`"


@dataclass(frozen=True)
class Plain:
    """A text in plain form: ``text``, and for each of its characters the original's span."""

    text: str
    origin: tuple[tuple[int, int], ...]

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original span of ``text[start:end]`` (``end > start``)."""
        return self.origin[start][0], self.origin[end - 1][1]


def plain(text: str) -> Plain:
    """``text`` with escapes decoded, NFC, lower case, each whitespace run one space."""
    if text.isascii() and not _NOT_PLAIN_ASCII.search(text):
        # Most texts: nothing to decode or collapse, each character stands for itself.
        return Plain(text.lower(), tuple((index, index + 1) for index in range(len(text))))
    units = list(_units(text))
    chars: list[str] = []
    origin: list[tuple[int, int]] = []
    # A base character and the combining marks after it are normalised together (NFD -> NFC).
    index = 0
    while index < len(units):
        decoded, start, end = units[index]
        index += 1
        while index < len(units) and _combining(units[index][0]):
            decoded += units[index][0]
            end = units[index][2]
            index += 1
        for char in unicodedata.normalize("NFC", decoded).lower():
            if char.isspace() and chars and chars[-1] == " ":
                origin[-1] = (origin[-1][0], end)
                continue
            chars.append(" " if char.isspace() else char)
            origin.append((start, end))
    return Plain("".join(chars), tuple(origin))


def plain_value(value: str) -> str:
    """A private value in the plain form texts are searched in (no escapes decoded: it is raw)."""
    return " ".join(unicodedata.normalize("NFC", value).lower().split())


class KnownValues:
    """Finds given private values in texts, in any of the forms above."""

    def __init__(self, values: Iterable[str]) -> None:
        patterns: dict[str, int] = {}  # pattern -> length of the value, to try longest first
        for value in {plain_value(v) for v in values}:
            if value:
                patterns[_pattern(value)] = len(value)
        ordered = sorted(patterns, key=patterns.__getitem__, reverse=True)
        self._pattern = re.compile("|".join(ordered)) if ordered else None

    def __bool__(self) -> bool:
        return self._pattern is not None

    def find(self, text: str) -> Iterator[tuple[int, int, str]]:
        """Each occurrence: its original span and the value as found (in plain form)."""
        if self._pattern is None:
            return
        view = plain(text)
        for match in self._pattern.finditer(view.text):
            if match.end() > match.start():
                start, end = view.span(match.start(), match.end())
                yield start, end, match.group()


def _pattern(value: str) -> str:
    digits = _NOT_DIGIT.sub("", value)
    if _DIGIT_VALUE.fullmatch(value) and len(digits) >= MIN_KNOWN_LENGTH:
        # A number or a code: found however its digits are grouped, with or without its +.
        return rf"(?<![\d+])\+?{DIGIT_SEPARATORS.join(digits)}(?!\d)"
    escaped = re.escape(value)
    if len(value) < MIN_KNOWN_LENGTH or value in COMMON_WORDS:
        return _as_a_value(escaped)
    before = r"(?<!\w)" if re.match(r"\w", value) else ""
    after = r"(?!\w)" if re.search(r"\w\Z", value) else ""
    return f"{before}{escaped}{after}"


def _as_a_value(escaped: str) -> str:
    """``escaped`` where it stands as a value: the whole text, quoted, or after ``=``."""
    opening, closing = re.escape(_QUOTES_BEFORE), re.escape(_QUOTES_AFTER)
    return (
        rf"(?:(?<=[{opening}]){escaped}(?=[{closing}])"
        rf"|(?<==){escaped}(?=$|[&;,\s])"
        rf"|^\s*{escaped}\s*$)"
    )


def _units(text: str) -> Iterator[tuple[str, int, int]]:
    """``text`` as (decoded text, start, end) pieces: escapes decoded, whitespace as one space."""
    position = 0
    for match in _FORMS.finditer(text):
        for index in range(position, match.start()):
            yield text[index], index, index + 1
        decoded = _decode(match)
        if decoded is None:  # not a valid escape after all: kept as written
            for index in range(match.start(), match.end()):
                yield text[index], index, index + 1
        else:
            yield decoded, match.start(), match.end()
        position = match.end()
    for index in range(position, len(text)):
        yield text[index], index, index + 1


def _decode(match: re.Match[str]) -> str | None:
    if match["space"] is not None or match["plus"] is not None:
        return " "
    if match["esc"] is not None:
        return _JSON_ESCAPES[match["esc"]]
    if match["name"] is not None:
        return html5.get(match["name"])
    if match["pct"] is not None:
        try:
            return bytes.fromhex(match["pct"].replace("%", "")).decode("utf-8")
        except UnicodeDecodeError:
            return None
    number = match["dec"] or match["hex"] or match["u"]
    code = int(number, 10 if match["dec"] else 16)
    # Surrogates (half of a JSON pair) and code points beyond Unicode stay as written.
    return chr(code) if code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF else None


def _combining(text: str) -> bool:
    return bool(text) and unicodedata.combining(text[0]) != 0
