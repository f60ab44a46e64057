"""A local HTTP server that answers like Engage for contact/get and message/sendSingle.

Engage paths live under a configurable prefix (``/api/rest/v19`` by default); the control API for
tests and demos lives under ``/_sandbox/`` and needs no credentials (with ``tls``, all of it is
served over TLS)::

    GET  /_sandbox/calls      every call received        POST /_sandbox/reset     forget everything
    GET  /_sandbox/stats      counts, duplicates, rate   POST /_sandbox/contacts  add contacts
    GET  /_sandbox/sends      successful sends           POST /_sandbox/messages  add messages
                                                         POST /_sandbox/faults    set the fault plan

``/login`` plays the login page of a proxy in front of Engage (see the ``redirect`` fault).
The transports live in :mod:`tasks.sandbox.rest` and :mod:`tasks.sandbox.soap`; what they share
(credentials, faults, the call log) in :mod:`tasks.sandbox.gate`.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import sys
import threading
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from tasks.sandbox import control, gate, rest, soap
from tasks.sandbox.gate import LOGIN_PATH, error_body
from tasks.sandbox.state import SandboxState

DEFAULT_PREFIX = "/api/rest/v19"
_CONTROL_PATHS = ("/_sandbox/reset", "/_sandbox/contacts", "/_sandbox/messages", "/_sandbox/faults")
DEFAULT_SOAP_PATH = "/api/soap/v17"


class SandboxHTTPServer(ThreadingHTTPServer):
    """The server: one thread per connection, keep-alive, a deep accept queue for benchmarks."""

    daemon_threads = True
    request_queue_size = 512

    def __init__(
        self,
        address: tuple[str, int],
        state: SandboxState,
        *,
        prefix: str = DEFAULT_PREFIX,
        soap_path: str = DEFAULT_SOAP_PATH,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.state = state
        self.prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
        self.soap_path = "/" + soap_path.strip("/")
        self.tls = tls
        super().__init__(address, SandboxHandler)

    def get_request(self) -> tuple[socket.socket, Any]:
        """Accept; with ``tls``, the handshake happens on the connection's own thread."""
        sock, address = super().get_request()
        if self.tls is not None:
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that hung up (a killed worker, a timeout, a refused certificate) is expected."""
        if not isinstance(sys.exc_info()[1], ConnectionError | ssl.SSLError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class SandboxHandler(BaseHTTPRequestHandler):
    """Routes one request to the control API, the REST API, the SOAP API or the proxy's login.

    Implements :class:`tasks.sandbox.gate.Exchange` for the REST and SOAP endpoints.
    """

    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; without TCP_NODELAY, Nagle holds the body back
    # until the client's delayed ACK (~40 ms per answer), a stall Engage does not have.
    disable_nagle_algorithm = True
    server: SandboxHTTPServer
    #: Seconds between two bytes of the next answer (the trickle fault); 0: all at once.
    _trickle = 0.0
    #: BaseHTTPRequestHandler's own: the status line and headers not yet written.
    _headers_buffer: list[bytes]

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request stderr log; calls are recorded in the state instead."""

    # -- routing -------------------------------------------------------------------------------

    def do_GET(self) -> None:
        """Control reads, system/getApiVersion and the proxy's login page."""
        path = urlsplit(self.path).path
        state = self.server.state
        if path == "/_sandbox/calls":
            self._send_json(200, state.calls_as_json())
        elif path == "/_sandbox/stats":
            self._send_json(200, state.stats())
        elif path == "/_sandbox/sends":
            self._send_json(200, state.sends_as_json())
        elif path == f"{self.server.prefix}/system/getApiVersion":
            rest.handle(self, state, "system/getApiVersion", None)
        elif path == LOGIN_PATH:
            gate.serve_login(self, state)
        else:
            self._not_found()

    def do_POST(self) -> None:
        """Control writes, the REST operations, SOAP and the proxy's login page."""
        path = urlsplit(self.path).path
        body = self._read_body()
        state = self.server.state
        if path.startswith("/_sandbox/"):
            self._control(path, body)
        elif path == f"{self.server.prefix}/contact/get":
            rest.handle(self, state, "contact/get", body)
        elif path == f"{self.server.prefix}/message/sendSingle":
            rest.handle(self, state, "message/sendSingle", body)
        elif path == f"{self.server.prefix}/contact/create":
            rest.handle(self, state, "contact/create", body)
        elif path == self.server.soap_path:
            soap.handle(self, state, body)
        elif path == LOGIN_PATH:
            gate.serve_login(self, state)
        else:
            self._not_found()

    # -- control API ---------------------------------------------------------------------------

    def _control(self, path: str, raw: bytes) -> None:
        state = self.server.state
        if path not in _CONTROL_PATHS:
            self._not_found()
            return
        try:
            data = control.read_json(raw)
            if path == "/_sandbox/reset":
                state.reset()
            elif path == "/_sandbox/contacts":
                state.add_contacts(control.contacts(data))
            elif path == "/_sandbox/messages":
                state.add_messages(control.messages(data))
            else:
                state.set_faults(control.faults(data))
        except ValueError as err:  # ControlError, or a fault step Faults.from_spec refuses
            self._send_json(400, {"error": f"POST {path}: {err}"})
            return
        self._send_json(200, {"ok": True})

    # -- the Exchange the endpoints answer through ---------------------------------------------

    def header(self, name: str) -> str | None:
        """A request header, or None."""
        return self.headers.get(name)

    def send(
        self,
        status: int,
        payload: bytes,
        content_type: str | None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer with this status, body and headers."""
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        if self._trickle:
            self.send_header("Connection", "close")  # hung up after it, or the client gave up
            self._write_slowly(b"".join(self._headers_buffer) + b"\r\n" + payload)
            return
        self.end_headers()
        self.wfile.write(payload)

    def trickle(self, seconds_per_byte: float) -> None:
        """Write the next answer one byte at a time, this many seconds apart."""
        self._trickle = seconds_per_byte

    def _write_slowly(self, raw: bytes) -> None:
        """One byte, then a pause, until the answer is out or the client has hung up."""
        interval, self._trickle = self._trickle, 0.0
        self._headers_buffer = []
        self.close_connection = True
        try:
            for at in range(len(raw)):
                self.wfile.write(raw[at : at + 1])
                self.wfile.flush()
                time.sleep(interval)
        except OSError:
            pass  # the client gave up waiting: what the fault is there to show

    def drop(self) -> None:
        """Reset the connection without an answer: the client cannot know what happened."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def break_record(self) -> None:
        """Write what no TLS stack can decrypt, past TLS, on the connection's socket; hang up.

        A TLS-inspecting proxy that fails mid-answer looks like this to the client: the request
        went through, the answer's record is corrupt.
        """
        self.close_connection = True
        # An application-data record header, then bytes whose MAC cannot match.
        garbage = b"\x17\x03\x03\x00\x40" + os.urandom(64)
        with contextlib.suppress(OSError):
            raw = socket.socket(fileno=os.dup(self.connection.fileno()))
            try:
                raw.sendall(garbage)
                raw.shutdown(socket.SHUT_RDWR)
            finally:
                raw.close()

    # -- helpers -------------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _not_found(self) -> None:
        self._send_json(404, error_body("CLIENT", "INVALID_REQUEST", "Not Found"))

    def _send_json(self, status: int, data: Any) -> None:
        rest.send_json(self, status, data)


class Sandbox:
    """A sandbox server on a background thread, for tests and the demo.

    >>> with Sandbox() as sandbox:  # doctest: +SKIP
    ...     sandbox.base_url, sandbox.state.calls
    """

    def __init__(
        self,
        state: SandboxState | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        prefix: str = DEFAULT_PREFIX,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.state = state or SandboxState()
        self._server = SandboxHTTPServer((host, port), self.state, prefix=prefix, tls=tls)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="engage-sandbox", daemon=True
        )

    @property
    def root_url(self) -> str:
        """``http://host:port`` of the server."""
        host, port = self._server.server_address[:2]
        scheme = "https" if self._server.tls is not None else "http"
        return f"{scheme}://{host!s}:{port}"

    @property
    def base_url(self) -> str:
        """The REST base to use as ENGAGE_BASE_URL."""
        return self.root_url + self._server.prefix

    @property
    def soap_url(self) -> str:
        """The SOAP endpoint to use as ENGAGE_BASE_URL with ENGAGE_TRANSPORT=soap."""
        return self.root_url + self._server.soap_path

    def start(self) -> Sandbox:
        """Serve in the background."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def serve_forever(
    host: str, port: int, prefix: str, state: SandboxState
) -> None:  # pragma: no cover - the CLI's foreground mode
    """Serve in the foreground until interrupted."""
    server = SandboxHTTPServer((host, port), state, prefix=prefix)
    try:
        server.serve_forever()
    finally:
        server.server_close()
