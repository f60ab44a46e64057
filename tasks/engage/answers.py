"""What counts as Engage's answer, and how an answer that does not is described.

Success is only what the documentation calls success: 204 to ``message/sendSingle``, 200 with a
JSON ``contactId`` to ``contact/get``. A redirect, an HTML page or a malformed id is none of
Engage's documented answers: it becomes :class:`~tasks.core.errors.UnexpectedAnswer`, whose text
names the status, the content type and, for a redirect, where it pointed. Quotes from the answer
are cut between words (:func:`tasks.core.masking.excerpt`) and masked by the delivery layer.
"""

from __future__ import annotations

import html
import json
import re
from urllib.parse import urljoin, urlsplit, urlunsplit

import requests

from tasks.core.errors import UnexpectedAnswer
from tasks.core.masking import excerpt

#: The largest contact id: Engage's ids are Java longs, and 0 or less names no contact.
MAX_CONTACT_ID = 2**63 - 1
#: How much of a page title or a shown value is kept in an error text.
SHOWN = 80
#: The longest redirect target shown.
LOCATION_SHOWN = 200

REDIRECT_HINT = "a redirect: a proxy or login page in front of Engage?"
HTML_HINT = "a proxy or login page in front of Engage?"

# ASCII digits only: str.isdigit() would also take "²" or "١٢", which int() reads differently.
_DIGITS = re.compile(r"[0-9]+")
_HTML_START = re.compile(rb"\s*(<\?xml[^>]*>\s*)?(<!doctype html|<html[\s>])", re.IGNORECASE)
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})


def media_type(response: requests.Response) -> str:
    """The answer's media type without parameters, lower case; "" when none was given."""
    return response.headers.get("Content-Type", "").partition(";")[0].strip().lower()


def is_json(response: requests.Response) -> bool:
    """The answer says it is JSON (``application/json`` or a ``+json`` type)."""
    kind = media_type(response)
    return kind == "application/json" or kind.endswith("+json")


def is_html(response: requests.Response) -> bool:
    """The answer is a web page, by its content type or by how its body starts."""
    return media_type(response) in _HTML_TYPES or bool(_HTML_START.match(response.content[:512]))


def contact_id(value: object) -> int:
    """A contact id read from an answer; ValueError says why ``value`` is none."""
    # Accepted: a JSON integer (what Engage sends) and a string of ASCII digits ("12"), which a
    # gateway may write to keep a long exact in JavaScript; both are unambiguous. Refused:
    # booleans (JSON true is an int to Python), floats even when integral (3.0: Engage writes
    # longs without a fraction, so a float means something rewrote the answer, and above 2**53
    # it has already lost digits), signs, whitespace, and anything outside 1 .. 2**63-1.
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"contactId {shown(value)} is not an integer")
    if isinstance(value, str):
        if not _DIGITS.fullmatch(value):
            raise ValueError(f"contactId {shown(value)} is not a number")
        # More than 19 digits is out of range anyway; int() of a huge string is slow.
        number = int(value) if len(value.lstrip("0")) <= 19 else MAX_CONTACT_ID + 1
    else:
        number = value
    if not 1 <= number <= MAX_CONTACT_ID:
        raise ValueError(f"contactId {shown(value)} is outside 1 .. 2**63-1")
    return number


def shown(value: object) -> str:
    """``value`` as JSON, shortened between words, for an error text."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return excerpt(text, SHOWN)


def unexpected(
    operation: str,
    response: requests.Response,
    problem: str = "not the documented answer",
    *,
    sends: bool = False,
) -> UnexpectedAnswer:
    """The error for an answer that is neither the documented success nor an error status.

    ``sends`` is set for ``message/sendSingle``: a 2xx that is not a page may then come from
    Engage after it sent the message, which the error records in ``may_have_acted``.
    """
    status = response.status_code
    location = None
    may_have_acted = False
    if 300 <= status < 400:
        location = redirect_target(response)
        problem = REDIRECT_HINT
    elif is_html(response):
        problem = f"{_page(response)}: {HTML_HINT}"
    elif sends and 200 <= status < 300:
        may_have_acted = True
        problem += "; the message may have been sent"
    return UnexpectedAnswer(
        operation,
        status=status,
        content_type=media_type(response) or "without Content-Type",
        problem=problem,
        location=location,
        may_have_acted=may_have_acted,
    )


def redirect_target(response: requests.Response) -> str:
    """Where a redirect pointed: scheme, host and path; credentials and query left out."""
    raw = response.headers.get("Location")
    if not raw:
        return "(none)"
    # A login URL's query may carry a session token or our own request (ids, a phone number).
    parts = urlsplit(urljoin(response.url or "", raw.strip()))
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    host = (parts.hostname or "") + port
    target = urlunsplit((parts.scheme, host, parts.path, "", ""))
    if parts.query or parts.fragment:
        target += "?..."
    # A path too long to show whole is left out, rather than cut inside a value it may hold.
    return target if len(target) <= LOCATION_SHOWN else f"{parts.scheme}://{host}/..."


def _page(response: requests.Response) -> str:
    title = _TITLE.search(response.content[:4096].decode("utf-8", errors="replace"))
    if title is None:
        return "an HTML page"
    # Unescaped, so a value the page quotes (O&#x27;Brien) reads as sent and is found to mask.
    text = html.unescape(" ".join(title.group(1).split()))
    return f"an HTML page titled {shown(text)}"
