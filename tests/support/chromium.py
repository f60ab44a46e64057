"""A real headless browser for tests: Debian's ``chromium`` driven through its ``chromedriver``.

Selenium is told where both are, so nothing is downloaded (Selenium Manager is never asked).
A test that needs the browser skips when it is missing, and fails in CI, whose ``.ci/run``
installs ``chromium`` and ``chromium-driver``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver

#: Where Debian's packages put the browser and its driver.
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

T = TypeVar("T")


def require_chromium() -> None:
    """Skip the test without chromium and chromedriver; fail it in CI, where they must be."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not Path(path).exists()]
    if missing:
        message = f"not installed: {', '.join(missing)} (apt-get install chromium chromium-driver)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


@contextmanager
def headless_chromium(width: int = 1280, height: int = 900) -> Iterator[WebDriver]:
    """A headless chromium with a fresh profile, quit (and its profile deleted) afterwards."""
    require_chromium()
    profile = tempfile.mkdtemp(prefix="engage-chromium-")
    options = Options()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # tests run as root on CI machines
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        f"--window-size={width},{height}",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_until(check: Callable[[], T | None], timeout: float = 30.0, what: str = "page") -> T:
    """Poll ``check`` until it returns something truthy (the browser acts asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)
