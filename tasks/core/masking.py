"""Masking of phone numbers, e-mail addresses and other private values for logs, Flower, errors.

Two ways, best first:

- :func:`mask_known` masks by value: given what a layer knows is private (a request's identifier
  and parameter values, :meth:`tasks.core.request.SendRequest.private_values`), it masks each
  occurrence, in any form Engage may echo it (:mod:`tasks.core.masking_forms`: JSON and HTML
  escapes, URL encoding, NFD, case, whitespace, digits grouped otherwise). A value under three
  characters or a common word (``value``) is masked only where it stands as a value: the whole
  text, between quotes, or after ``=``; elsewhere the text stays readable;
- :func:`mask_text` masks by pattern, the fallback for free text whose private parts are not
  known: anything shaped like an e-mail address, and runs of 7+ digits that stand alone (a run
  joined to letters, as in a uuid or a key such as ``f3-nonjson-1712345689``, is an id, not a
  phone number, and stays readable).

:class:`Masker` does both, in that order: it is how the delivery layer masks everything Engage
answered about one request (:meth:`tasks.core.errors.EngageError.masked`). Texts quoted from an
answer are cut with :func:`excerpt`, never inside a word, so a value is quoted whole (and
masked) or not at all; a value with spaces that a cut ends inside is masked as far as it got.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from typing import Any

from tasks.core.masking_forms import MIN_KNOWN_LENGTH, KnownValues, plain_value

# Anything e-mail-shaped, in any script: the local part runs back to a space or the punctuation
# that surrounds addresses in text (quotes, brackets, commas, a colon as in mailto:); <> stay in,
# so that even "<script>@x.io" is masked.
_EMAIL = re.compile(r"[^\s@\"'(),;:\[\]]+@[\w\-]+(?:\.[\w\-]+)+")
# A digit run with the separators people type, optionally after +, that is a token of its own:
# not touching a letter, digit or _, nor joined to one by - . / (uuid segments, keys, file names).
# The atomic group stops a run that fails the lookahead from matching again shorter.
_PHONE = re.compile(r"(?<![\w+])(?<!\w[\-./])(?>\+?\d[\d \-().\u00a0]*\d)(?!\w)(?![\-./]\w)")
_NOT_DIGIT = re.compile(r"\D")
# A value made of digits and what people type around them is a phone number.
_PHONE_VALUE = re.compile(r"\+?[\d \-().\u00a0/]+")
#: Digits a run needs to count as a phone number: shorter runs are dates, counts, small ids.
MIN_PHONE_DIGITS = 7
#: Ends an :func:`excerpt` that was cut short.
CUT = "..."
# Where an excerpt may be cut: characters that no phone number, e-mail address or id token holds
# (the same ones that end an address's local part in _EMAIL).
_CUT_POINT = re.compile(r"[\s\"'(),;:\[\]<>{}]")
# A phone number's tail as it may stand before a cut: digits and what people type between them.
_PHONE_TAIL = re.compile(r"\+?\d[\d \-().\u00a0]*\Z")


class Masker:
    """Masks texts that may echo one request: its private values by value, then by pattern.

    ``Masker(request.private_values())`` is the one way the delivery layer masks what Engage
    answered: in errors (:meth:`tasks.core.errors.EngageError.masked`), dead letters and logs.
    ``readable`` are numbers known not to be private (the contact id), which the pattern would
    otherwise take for phone numbers.
    """

    def __init__(self, secrets: Iterable[str], *, readable: Iterable[str] = ()) -> None:
        secrets = tuple(secrets)
        # Only values long enough to be told apart from ordinary words are looked for at a cut.
        self._secrets = tuple(
            text for text in (" ".join(s.split()) for s in secrets) if len(text) >= MIN_KNOWN_LENGTH
        )
        self._known = KnownValues(secrets)
        self._readable = frozenset(readable)

    def __call__(self, text: str) -> str:
        """``text`` with each private value, and anything number- or address-shaped, masked."""
        if self._known:
            text = _mask_found(text, self._known)
            *heads, rest = text.split(CUT)
            text = CUT.join([*(self._mask_cut_value(head) for head in heads), rest])
        return mask_text(text, keep=self._readable)

    def _mask_cut_value(self, head: str) -> str:
        """``head`` (text before a cut) with the start of a private value it ends in masked."""
        for secret in self._secrets:
            length = _cut_prefix_length(head, secret)
            if length:
                return head[:-length] + mask_secret(head[-length:])
        return head


def mask_phone(number: str) -> str:
    """Keep the first two and last two digits: ``48505606707`` -> ``48*******07``."""
    digits = _NOT_DIGIT.sub("", number)
    if len(digits) <= 4:
        return "*" * len(digits)
    return digits[:2] + "*" * (len(digits) - 4) + digits[-2:]


def mask_email(address: str) -> str:
    """Keep the first character of the local part and the domain: ``a***@example.com``."""
    local, _, domain = address.rpartition("@")
    return f"{local[:1]}***@{domain}" if local and domain else "***"


def mask_text(text: str, *, keep: Collection[str] = ()) -> str:
    """Mask every e-mail-shaped text and stand-alone phone-like digit run inside free text.

    A digit run in ``keep`` (an id known not to be private) stays as it is.
    """
    text = _EMAIL.sub(lambda m: mask_email(m.group()), text)
    return _PHONE.sub(lambda m: _mask_digit_run(m.group(), keep), text)


def mask_known(text: str, secrets: Iterable[str]) -> str:
    """Mask each occurrence of the given private values, in any form (see the module's rule)."""
    known = KnownValues(secrets)
    return _mask_found(text, known) if known else text


def _mask_found(text: str, known: KnownValues) -> str:
    parts: list[str] = []
    last = 0
    for start, end, found in known.find(text):
        if start < last:
            continue
        written = text[start:end]
        # Masked from the text as written (its case) when that is the value; else as decoded.
        parts += [
            text[last:start],
            mask_secret(written if plain_value(written) == found else found),
        ]
        last = end
    parts.append(text[last:])
    return "".join(parts)


def mask_secret(value: str) -> str:
    """A private value's masked form: an address or number keeps its ends, anything else goes."""
    if "@" in value.strip("@"):
        return mask_email(value)
    if _is_phone(value):
        return mask_phone(value)
    return "***"


def excerpt(text: str, limit: int) -> str:
    """``text`` on one line, at most ``limit`` characters, cut between words and ended by ``...``.

    A cut never splits a number, an address or an id, so :class:`Masker` finds each whole.
    """
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    points = [m.start() for m in _CUT_POINT.finditer(flat, 0, limit + 1)]
    return flat[: points[-1] if points else 0].rstrip() + CUT


def mask_value(value: Any) -> Any:
    """Mask strings anywhere inside JSON-like data (dicts, lists, strings)."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: mask_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_value(v) for v in value]
    return value


def _mask_digit_run(run: str, keep: Collection[str]) -> str:
    if run in keep or len(_NOT_DIGIT.sub("", run)) < MIN_PHONE_DIGITS:
        return run
    return mask_phone(run)


def _is_phone(value: str) -> bool:
    text = value.strip()
    return bool(_PHONE_VALUE.fullmatch(text)) and len(_NOT_DIGIT.sub("", text)) >= MIN_PHONE_DIGITS


def _cut_prefix_length(head: str, secret: str) -> int:
    """How many characters at the end of ``head`` begin ``secret`` (0: none, or too few)."""
    if _is_phone(secret):
        tail = _PHONE_TAIL.search(head)
        digits = _NOT_DIGIT.sub("", tail.group()) if tail else ""
        if len(digits) >= MIN_KNOWN_LENGTH and _NOT_DIGIT.sub("", secret).startswith(digits):
            return len(tail.group()) if tail else 0
    folded_head, folded = head.lower(), secret.lower()
    if len(folded_head) != len(head) or len(folded) != len(secret):
        folded_head, folded = head, secret  # lower() changed a length: compare as written
    # Longest first, and only a proper start: the whole value was masked already.
    for length in range(min(len(folded) - 1, len(folded_head)), MIN_KNOWN_LENGTH - 1, -1):
        start = len(folded_head) - length
        if folded_head.endswith(folded[:length]) and not head[start - 1 : start].isalnum():
            return length
    return 0
