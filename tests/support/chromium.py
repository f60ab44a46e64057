"""A real headless Chromium, driven over the DevTools protocol, for tests that look at a page.

Debian's ``chromium`` (``.ci/run`` installs it when missing). :func:`open_browser` starts one
with a profile of its own in a temporary directory; :meth:`Browser.visit` loads a page (HTTP
headers such as a basic-auth login travel in the protocol, never on a command line ``ps`` shows),
waits until its text holds what the test expects, and returns the text; :meth:`Browser.screenshot`
saves a PNG to look at. The protocol's websocket is tornado's (Flower's dependency): no extra
package.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from tornado.websocket import WebSocketClientConnection, websocket_connect

#: Debian's package name and program.
PROGRAM = "chromium"
_LISTENING = re.compile(r"DevTools listening on (ws://\S+)")


def chromium_or_skip() -> str:
    """Path of ``chromium``; the test skips without it, and fails in CI (which installs it)."""
    found = shutil.which(PROGRAM)
    if found is None:
        message = "chromium is not installed (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


class Browser:
    """One page of a headless Chromium, commanded over the DevTools protocol."""

    def __init__(self, loop: asyncio.AbstractEventLoop, socket: WebSocketClientConnection) -> None:
        self._loop = loop
        self._socket = socket
        self._ids = itertools.count(1)

    def command(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one protocol command and return its result (events in between are skipped)."""
        return self._loop.run_until_complete(self._command(method, params))

    async def _command(self, method: str, params: Mapping[str, Any]) -> dict[str, Any]:
        number = next(self._ids)
        await self._socket.write_message(json.dumps({"id": number, "method": method, **_p(params)}))
        while True:
            raw = await asyncio.wait_for(self._socket.read_message(), 30)
            if raw is None:
                raise RuntimeError("Chromium closed the DevTools connection")
            message = json.loads(raw)
            if message.get("id") == number:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result

    def visit(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        expect: tuple[str, ...] = (),
        timeout: float = 30.0,
    ) -> str:
        """Load ``url`` and return the page's text once it holds every string of ``expect``."""
        self.command("Network.enable")
        self.command("Network.setExtraHTTPHeaders", headers=dict(headers or {}))
        self.command("Page.navigate", url=url)
        deadline = time.monotonic() + timeout
        while True:
            text = self.text()
            if all(part in text for part in expect):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"{url} never showed {expect}; it shows:\n{text[:2000]}")
            time.sleep(0.2)

    def text(self) -> str:
        """The page's visible text (``document.body.innerText``)."""
        result = self.command(
            "Runtime.evaluate",
            expression="document.body ? document.body.innerText : ''",
            returnByValue=True,
        )
        return str(result.get("result", {}).get("value", ""))

    def screenshot(self, path: Path) -> Path:
        """Save the whole page as PNG at ``path``."""
        data = self.command("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data["data"]))
        return path


def _p(params: Mapping[str, Any]) -> dict[str, Any]:
    return {"params": dict(params)} if params else {}


@contextmanager
def open_browser(width: int = 1280, height: int = 900) -> Iterator[Browser]:
    """A headless Chromium with one blank page; stopped and its profile removed afterwards."""
    program = chromium_or_skip()
    profile = Path(tempfile.mkdtemp(prefix="engage-chromium-"))
    argv = [
        program,
        "--headless=new",
        "--remote-debugging-port=0",
        "--remote-debugging-address=127.0.0.1",
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
        # Root in a container has no user namespaces for Chromium's sandbox.
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "about:blank",
    ]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    loop = asyncio.new_event_loop()
    try:
        browser_ws = _devtools_address(process)
        socket = loop.run_until_complete(_connect(browser_ws))
        browser = Browser(loop, socket)
        pages = browser.command("Target.getTargets")["targetInfos"]
        page = next(t["targetId"] for t in pages if t["type"] == "page")
        socket.close()
        port = browser_ws.split(":")[2].split("/")[0]
        page_ws = f"ws://127.0.0.1:{port}/devtools/page/{page}"
        page_socket = loop.run_until_complete(_connect(page_ws))
        yield Browser(loop, page_socket)
        page_socket.close()
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        loop.close()
        shutil.rmtree(profile, ignore_errors=True)


async def _connect(url: str) -> WebSocketClientConnection:
    # Inside the loop, so tornado binds the connection to it (not to a default loop).
    return await websocket_connect(url, max_message_size=1 << 27)


def _devtools_address(process: subprocess.Popen[str], timeout: float = 30.0) -> str:
    """The browser's DevTools websocket, read from the line Chromium prints on stderr."""
    assert process.stderr is not None
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line and process.poll() is not None:
            break
        seen.append(line)
        found = _LISTENING.search(line)
        if found:
            # Keep reading what Chromium logs, or a full pipe would stall it.
            threading.Thread(target=process.stderr.read, daemon=True).start()
            return found.group(1)
    raise RuntimeError("Chromium did not start its DevTools endpoint:\n" + "".join(seen[-20:]))
