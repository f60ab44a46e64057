"""What a person does on a page, for :class:`tests.support.chromium.Browser`: type, click, read.

Each action runs as a DevTools ``Runtime.evaluate`` in the page (which a page's
Content-Security-Policy does not restrict) and then waits for what the person would wait for:
the next page's text.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tests.support.chromium import Browser
from tests.support.waiting import wait_for


def evaluate(browser: Browser, expression: str) -> Any:
    """The value of ``expression`` in the page."""
    reply = browser.command("Runtime.evaluate", expression=expression, returnByValue=True)
    if "exceptionDetails" in reply:
        raise RuntimeError(f"{expression}: {reply['exceptionDetails']}")
    return reply.get("result", {}).get("value")


def html(browser: Browser) -> str:
    """The page's markup as the browser holds it (hidden inputs and attributes included)."""
    return str(evaluate(browser, "document.documentElement.outerHTML"))


def type_into(browser: Browser, selector: str, text: str) -> None:
    """Put ``text`` into the field ``selector`` names."""
    found = evaluate(
        browser,
        f"(() => {{ const f = document.querySelector({json.dumps(selector)});"
        f" if (!f) return false; f.value = {json.dumps(text)}; return true; }})()",
    )
    assert found, f"no field {selector}"


def click(browser: Browser, selector: str) -> None:
    """Click the element ``selector`` names (a link or a submit button)."""
    found = evaluate(
        browser,
        f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
        " if (!e) return false; e.click(); return true; })()",
    )
    assert found, f"nothing to click at {selector}"


def texts(browser: Browser, selector: str) -> list[str]:
    """The text of every element ``selector`` names."""
    value = evaluate(
        browser,
        f"Array.from(document.querySelectorAll({json.dumps(selector)})).map(e => e.innerText)",
    )
    return [str(v) for v in value or []]


def wait_for_text(browser: Browser, *parts: str, timeout: float = 30.0) -> str:
    """The page's text once it holds every one of ``parts`` (after a click, a navigation)."""

    def shown() -> str | None:
        text = browser.text()
        return text if all(part in text for part in parts) else None

    return wait_until(shown, timeout, f"a page showing {parts}")


def wait_until(check: Callable[[], str | None], timeout: float, what: str) -> str:
    """Poll ``check`` until it returns a text."""
    text: str = wait_for(check, timeout, what, interval=0.1)
    return text
