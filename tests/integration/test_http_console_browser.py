"""The operator console in a real headless chromium, against a real worker, Redis and sandbox.

Log in with an operate token, find a dead letter, replay it, watch it become sent; a form
stripped of its CSRF token is refused; purge all of a reason with its count typed; no page shows
a number, a parameter value or a token. Screenshots go to ``tmp_path`` (and to
``$CONSOLE_SCREENSHOTS`` when set, to look at).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tasks.sandbox import Sandbox
from tests.integration.conftest import WorkerFactory, wait_for
from tests.integration.test_http_api import Issued, create_token
from tests.support.chromium import Browser, chromium_or_skip, open_browser
from tests.support.environments import WORKER_ENV, child_env
from tests.support.http_server import api_process, free_port, start_api
from tests.support.page_actions import click, html, texts, type_into, wait_for_text

pytestmark = pytest.mark.integration

#: A valid Polish mobile number the sandbox does not know (until the test adds it).
UNKNOWN_NUMBER = "+48 505 606 708"
DIGITS = "48505606708"
PRIVATE_VALUE = "Zofia-7731"


@pytest.fixture
def console(
    start_workers: WorkerFactory, sandbox: Sandbox, tmp_path: Path
) -> Iterator[tuple[str, dict[str, str]]]:
    """A worker on the sandbox and ``engage-sms api``: (base URL, environment)."""
    chromium_or_skip()
    start_workers(sandbox.base_url)
    env = child_env(WORKER_ENV, ENGAGE_BASE_URL=sandbox.base_url)
    port = free_port()
    api = start_api(api_process(env, tmp_path / "api.log", port))
    try:
        yield f"http://127.0.0.1:{port}", env
    finally:
        api.stop()


def dead_letter(url: str, sender: Issued, key: str) -> None:
    """Send to the unknown number over HTTP and wait until it is dead-lettered."""
    headers = {"Authorization": f"Bearer {sender.token}", "Idempotency-Key": key}
    body = {
        "message_id": 23541,
        "mobile": UNKNOWN_NUMBER,
        "parameters": {"firstName": PRIVATE_VALUE},
    }
    answer = requests.post(f"{url}/v1/sends", json=body, headers=headers, timeout=30)
    assert answer.status_code == 202

    def state() -> str:
        answer = requests.get(f"{url}/v1/sends/{key}", headers=headers, timeout=30)
        return str(answer.json()["state"])

    wait_for(lambda: state() == "dead_lettered", 30, f"{key} to be dead-lettered")


def shoot(browser: Browser, tmp_path: Path, name: str) -> None:
    """A screenshot of the page, kept with the test (and where $CONSOLE_SCREENSHOTS says)."""
    path = browser.screenshot(tmp_path / f"{name}.png")
    wanted = os.environ.get("CONSOLE_SCREENSHOTS")
    if wanted:
        Path(wanted).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(wanted) / path.name)


def test_log_in_replay_a_dead_letter_and_see_it_sent(
    console: tuple[str, dict[str, str]], sandbox: Sandbox, tmp_path: Path
) -> None:
    """The operator's path through the console, in a browser, with nothing private on a page."""
    url, env = console
    sender = create_token(env, "shop", "send")
    operator = create_token(env, "ops", "operate")
    dead_letter(url, sender, "web-order-1")
    dead_letter(url, sender, "web-order-2")
    pages: list[str] = []

    with open_browser() as browser:
        browser.visit(f"{url}/console", expect=("Log in", "API token"))
        pages.append(html(browser))
        shoot(browser, tmp_path, "console-login")
        type_into(browser, "input[name=token]", operator.token)
        click(browser, "form button[type=submit]")

        wait_for_text(browser, "Dead letters (2)", "web-order-1", "web-order-2")
        assert texts(browser, "td.count[data-reason=unknown_recipient]") == ["2"]
        assert sorted(texts(browser, "#entries a.key")) == ["web-order-1", "web-order-2"]
        pages.append(html(browser))
        shoot(browser, tmp_path, "console-dead-letters")

        # A form without the CSRF token: refused, nothing replayed.
        click(browser, "#entries a.key[href$='web-order-2']")
        wait_for_text(browser, "Replay this send", "Timeline")
        pages.append(html(browser))
        browser.command(
            "Runtime.evaluate",
            expression="document.querySelector('#replay input[name=csrf]').remove();"
            "document.getElementById('replay').submit();",
        )
        wait_for_text(browser, "Refused")

        sandbox.state.add_contacts([{"type": "MOBILE", "value": DIGITS, "contactId": 44444}])
        browser.visit(f"{url}/console/dead-letters/web-order-1", expect=("Replay this send",))
        shoot(browser, tmp_path, "console-entry")
        click(browser, "#replay button[type=submit]")
        wait_for_text(browser, "Send web-order-1")

        def sent() -> str | None:
            text = browser.visit(f"{url}/console/sends/web-order-1", expect=("Send web-order-1",))
            return text if texts(browser, "#state") == ["sent"] else None

        wait_for(sent, 30, "the replayed send to be sent")
        assert "console: replay" in texts(browser, "#timeline")[0]
        pages.append(html(browser))
        shoot(browser, tmp_path, "console-sent")

        # The one whose forged form was refused is still there.
        browser.visit(f"{url}/console/dead-letters", expect=("Dead letters (1)",))
        assert texts(browser, "#entries a.key") == ["web-order-2"]
        pages.append(html(browser))

        # Purge all of a reason: only with the count shown typed in.
        click(browser, "a[href='/console/batch/purge?reason=unknown_recipient']")
        wait_for_text(browser, "Type the count (1) to confirm")
        shoot(browser, tmp_path, "console-confirm")
        type_into(browser, "input[name=typed]", "1")
        click(browser, "#batch button[type=submit]")
        wait_for_text(browser, "Purged 1 entry of unknown_recipient.")
        pages.append(html(browser))

    assert sandbox.state.sends == {(23541, 44444): 1}
    assert len(pages) == 6
    for page in pages:
        assert DIGITS not in page
        assert PRIVATE_VALUE not in page
        assert operator.token not in page
        assert sender.token not in page
