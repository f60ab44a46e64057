"""The operator console in a real headless chromium, against a real worker, Redis and sandbox.

Log in with an operate token, find a dead letter, replay it, watch it become sent; a form
stripped of its CSRF token is refused; no page shows a number, a parameter value or the token.
Screenshots go to ``tmp_path`` (and to ``$CONSOLE_SCREENSHOTS`` when set, to look at).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By

from tasks.sandbox import Sandbox
from tests.integration.conftest import WorkerFactory, wait_for
from tests.integration.test_http_api import Issued, create_token
from tests.support.chromium import headless_chromium, require_chromium, wait_until
from tests.support.environments import WORKER_ENV, child_env
from tests.support.http_server import api_process, free_port, start_api

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
    require_chromium()
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
    assert (
        requests.post(f"{url}/v1/sends", json=body, headers=headers, timeout=30).status_code == 202
    )

    def state() -> str:
        answer = requests.get(f"{url}/v1/sends/{key}", headers=headers, timeout=30)
        return str(answer.json()["state"])

    wait_for(lambda: state() == "dead_lettered", 30, f"{key} to be dead-lettered")


def shoot(driver: WebDriver, tmp_path: Path, name: str) -> None:
    """A screenshot of the page, kept with the test (and where $CONSOLE_SCREENSHOTS says)."""
    path = tmp_path / f"{name}.png"
    driver.save_screenshot(str(path))
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

    with headless_chromium() as driver:
        driver.get(f"{url}/console")
        wait_until(lambda: driver.find_elements(By.NAME, "token"), what="the login form")
        pages.append(driver.page_source)
        shoot(driver, tmp_path, "console-login")
        driver.find_element(By.NAME, "token").send_keys(operator.token)
        driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()

        wait_until(lambda: driver.find_elements(By.ID, "entries"), what="the dead letters")
        assert (
            driver.find_element(By.CSS_SELECTOR, "td.count[data-reason=unknown_recipient]").text
            == "2"
        )
        keys = [a.text for a in driver.find_elements(By.CSS_SELECTOR, "#entries a.key")]
        assert sorted(keys) == ["web-order-1", "web-order-2"]
        pages.append(driver.page_source)
        shoot(driver, tmp_path, "console-dead-letters")

        driver.find_element(By.LINK_TEXT, "web-order-2").click()
        wait_until(lambda: driver.find_elements(By.ID, "replay"), what="the entry page")
        pages.append(driver.page_source)
        # A form without the CSRF token: refused, nothing replayed.
        driver.execute_script(
            "document.querySelector('#replay input[name=csrf]').remove();"
            "document.getElementById('replay').submit();"
        )
        wait_until(lambda: "Refused" in driver.page_source, what="the refusal")
        driver.back()

        sandbox.state.add_contacts([{"type": "MOBILE", "value": DIGITS, "contactId": 44444}])
        driver.get(f"{url}/console/dead-letters/web-order-1")
        shoot(driver, tmp_path, "console-entry")
        driver.find_element(By.CSS_SELECTOR, "#replay button[type=submit]").click()
        wait_until(lambda: driver.find_elements(By.ID, "state"), what="the send page")

        def sent() -> bool:
            driver.refresh()
            return driver.find_element(By.ID, "state").text == "sent"

        wait_until(sent, what="the replayed send to be sent")
        pages.append(driver.page_source)
        shoot(driver, tmp_path, "console-sent")
        assert "console: replay" in driver.find_element(By.ID, "timeline").text

        driver.get(f"{url}/console/dead-letters")
        wait_until(lambda: driver.find_elements(By.ID, "entries"), what="the dead letters again")
        keys = [a.text for a in driver.find_elements(By.CSS_SELECTOR, "#entries a.key")]
        assert keys == ["web-order-2"]  # the one whose forged form was refused is still there
        pages.append(driver.page_source)

        # Purge all of a reason: only with the count shown typed in.
        driver.find_element(By.LINK_TEXT, "Purge all…").click()
        wait_until(lambda: driver.find_elements(By.ID, "batch"), what="the confirmation")
        assert driver.find_element(By.ID, "count").text == "1"
        shoot(driver, tmp_path, "console-confirm")
        driver.find_element(By.NAME, "typed").send_keys("1")
        driver.find_element(By.CSS_SELECTOR, "#batch button[type=submit]").click()
        wait_until(lambda: driver.find_elements(By.ID, "message"), what="the outcome")
        assert driver.find_element(By.ID, "message").text == "Purged 1 entry of unknown_recipient."
        pages.append(driver.page_source)

    assert sandbox.state.sends == {(23541, 44444): 1}
    for page in pages:
        assert DIGITS not in page
        assert PRIVATE_VALUE not in page
        assert operator.token not in page
        assert sender.token not in page
