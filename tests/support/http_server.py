"""``engage-sms api`` as a real process, and a web server that receives its callbacks."""

from __future__ import annotations

import hashlib
import hmac
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tasks.cli.local_stack import ManagedProcess

#: uvicorn's line once it listens.
READY = "Uvicorn running on"


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def api_process(env: dict[str, str], log_path: Path, port: int) -> ManagedProcess:
    """``engage-sms api --port PORT`` as an operator runs it (not yet started)."""
    argv = [sys.executable, "-m", "tasks.cli", "api", "--port", str(port)]
    return ManagedProcess(argv, env=env, log_path=log_path)


def start_api(api: ManagedProcess, timeout: float = 60.0) -> ManagedProcess:
    """Start the API and wait until it listens."""
    offset = len(api.log_text())
    api.start()
    api.wait_for_log(READY, timeout, offset=offset)
    return api


@dataclass(frozen=True)
class Delivery:
    """One callback POST as the receiver got it."""

    path: str
    headers: dict[str, str]
    body: bytes
    #: The receiver's own check of ``Engage-Signature`` (None: it was given no secret).
    verified: bool | None = None


def receiver_verifies(secret: str, body: bytes, header: str, now: float) -> bool:
    """What the README tells a receiver to do, written apart from the package's ``verify``:
    split ``t=..,v1=..``, HMAC-SHA256 of ``t.body``, compare in constant time, ``t`` within 5
    minutes."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    if not parts.get("t", "").isdigit() or abs(now - int(parts["t"])) > 300:
        return False
    signed = parts["t"].encode() + b"." + body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts.get("v1", ""))


class CallbackReceiver:
    """A web app's callback endpoint on loopback: records each POST (and, given the token's
    ``secret``, whether its signature verifies), answers 204 (or ``fail`` times 500 first)."""

    def __init__(self, *, fail: int = 0, secret: str | None = None) -> None:
        self.deliveries: list[Delivery] = []
        self._fail = fail
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                header = self.headers.get("Engage-Signature", "")
                verified = (
                    None if secret is None else receiver_verifies(secret, body, header, time.time())
                )
                with receiver._lock:
                    failing = receiver._fail > 0
                    receiver._fail -= 1 if failing else 0
                    receiver.deliveries.append(
                        Delivery(self.path, dict(self.headers), body, verified)
                    )
                self.send_response(500 if failing else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: object) -> None:  # keep the test output clean
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    @contextmanager
    def running(self) -> Iterator[CallbackReceiver]:
        """Serve until the block ends."""
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
            thread.join(5)
