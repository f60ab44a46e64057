"""E-mail addresses: a pragmatic syntax check, internationalised addresses included, no DNS.

Accepted: ``local@domain`` where the local part is a dot-atom of RFC 5322 characters or any
non-ASCII letters, marks, digits and symbols (RFC 6531: ``józef.nowak@...``), and the domain is
two or more labels of letters, digits and inner hyphens, in any script (``bücher.de``). Refused:
control, format and space characters anywhere (NUL, CR/LF, C1, U+2028, bidi overrides), quoted
local parts and address literals (``"a b"@x.io``, ``a@[192.0.2.1]``), which no contact list
needs. The address is kept as given: no case folding, no Unicode normalisation.
"""

from __future__ import annotations

import re
import unicodedata

from tasks.core.errors import InvalidSendRequest

#: RFC 5321: at most 64 octets before the ``@``, 254 in all (the 256-octet path less its <>).
MAX_LOCAL_OCTETS = 64
MAX_EMAIL_OCTETS = 254
#: DNS: at most 63 octets in one label, in its ASCII (``xn--``) form.
MAX_LABEL_OCTETS = 63

# RFC 5322 atext, the ASCII characters of a dot-atom.
_ATEXT = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-]+")
_ASCII_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?")
# Unicode categories never part of an address: controls, format, surrogates, private use,
# unassigned, and every kind of space or line separator.
_FORBIDDEN_CATEGORIES = ("C", "Z")
# Letters, marks and digits make up internationalised domain labels (scripts with vowel signs
# need the marks).
_LABEL_CATEGORIES = ("L", "M", "N")


def normalize_email(address: str) -> str:
    """The address without surrounding blanks; InvalidSendRequest (field ``email``) if malformed."""
    text = address.strip(" \t")
    for index, char in enumerate(text):
        if unicodedata.category(char).startswith(_FORBIDDEN_CATEGORIES):
            raise InvalidSendRequest(
                "email",
                "has a control, space or unencodable character "
                f"(U+{ord(char):04X} at index {index})",
            )
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain:
        raise InvalidSendRequest("email", "is not an e-mail address (expected local@domain)")
    if len(text.encode()) > MAX_EMAIL_OCTETS:
        raise InvalidSendRequest("email", f"is longer than {MAX_EMAIL_OCTETS} bytes")
    _check_local(local)
    _check_domain(domain)
    return text


def _check_local(local: str) -> None:
    if len(local.encode()) > MAX_LOCAL_OCTETS:
        raise InvalidSendRequest("email", f"has more than {MAX_LOCAL_OCTETS} bytes before the @")
    for atom in local.split("."):
        if not atom:
            raise InvalidSendRequest(
                "email", "has a dot at the start or end, or two dots, before @"
            )
        if not all(char >= "\x80" or _ATEXT.fullmatch(char) for char in atom):
            raise InvalidSendRequest(
                "email", "has a character not allowed before the @ (quoted forms are not accepted)"
            )


def _check_domain(domain: str) -> None:
    labels = domain.split(".")
    if len(labels) < 2:
        raise InvalidSendRequest("email", "needs a domain with a dot (example.com)")
    for label in labels:
        if not label:
            raise InvalidSendRequest("email", "has an empty part in its domain")
        if label.isascii():
            ascii_form = label
            valid = _ASCII_LABEL.fullmatch(label) is not None
        else:
            ascii_form = "xn--" + label.encode("punycode").decode("ascii")
            valid = (
                not label.startswith("-")
                and not label.endswith("-")
                and all(
                    char == "-" or unicodedata.category(char).startswith(_LABEL_CATEGORIES)
                    for char in label
                )
            )
        if not valid:
            raise InvalidSendRequest(
                "email", "has a domain part that is not letters, digits and inner hyphens"
            )
        if len(ascii_form) > MAX_LABEL_OCTETS:
            raise InvalidSendRequest(
                "email", f"has a domain part longer than {MAX_LABEL_OCTETS} characters"
            )
    if labels[-1].isdigit():
        raise InvalidSendRequest("email", "has a numeric top-level domain (an IP address?)")
