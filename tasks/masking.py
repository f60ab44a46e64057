"""Masking of phone numbers and e-mail addresses for logs, Flower and error texts."""

from __future__ import annotations

import re
from typing import Any

_EMAIL = re.compile(r"(?P<local>[A-Za-z0-9._%+\-]+)@(?P<domain>[A-Za-z0-9.\-]+\.[A-Za-z]{2,})")
# A run of 7+ digits, optionally with a leading + and the separators people type.
_PHONE = re.compile(r"(?<![\w])\+?\d[\d \-().]{5,}\d(?![\w])")


def mask_phone(number: str) -> str:
    """Keep the first two and last two digits: ``48505606707`` -> ``48*******07``."""
    digits = re.sub(r"\D", "", number)
    if len(digits) <= 4:
        return "*" * len(digits)
    return digits[:2] + "*" * (len(digits) - 4) + digits[-2:]


def mask_email(address: str) -> str:
    """Keep the first letter of the local part and the domain: ``a***@example.com``."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


def mask_text(text: str) -> str:
    """Mask every e-mail address and phone-like digit run inside free text."""
    text = _EMAIL.sub(lambda m: mask_email(m.group(0)), text)
    return _PHONE.sub(lambda m: _mask_digit_run(m.group(0)), text)


def _mask_digit_run(run: str) -> str:
    digits = re.sub(r"\D", "", run)
    # Short runs (dates, ids, counts) stay readable; 7+ digits may be a phone number.
    return mask_phone(run) if len(digits) >= 7 else run


def mask_value(value: Any) -> Any:
    """Mask strings anywhere inside JSON-like data (dicts, lists, strings)."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: mask_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_value(v) for v in value]
    return value
