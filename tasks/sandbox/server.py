"""A local HTTP server that answers like Engage for contact/get and message/sendSingle.

Engage paths live under a configurable prefix (``/api/rest/v19`` by default); the control API for
tests and demos lives under ``/_sandbox/`` and needs no credentials::

    GET  /_sandbox/calls      every call received        POST /_sandbox/reset     forget everything
    GET  /_sandbox/stats      counts, duplicates, rate   POST /_sandbox/contacts  add contacts
    GET  /_sandbox/sends      successful sends           POST /_sandbox/messages  add messages
                                                         POST /_sandbox/faults    set the fault plan
"""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tasks.sandbox.state import (
    DROP_AFTER,
    DROP_BEFORE,
    Answer,
    Call,
    SandboxState,
    now,
    server_error_body,
)

DEFAULT_PREFIX = "/api/rest/v19"
DEFAULT_SOAP_PATH = "/api/soap/v17"
API_VERSION = "19.0"


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
    ) -> None:
        self.state = state
        self.prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
        self.soap_path = "/" + soap_path.strip("/")
        super().__init__(address, SandboxHandler)

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that hung up (a killed worker, a timeout) is expected here, not an error."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class SandboxHandler(BaseHTTPRequestHandler):
    """Routes one request to the control API, the REST API or the SOAP API."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; without TCP_NODELAY, Nagle holds the body back
    # until the client's delayed ACK (~40 ms per answer), a stall Engage does not have.
    disable_nagle_algorithm = True
    server: SandboxHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request stderr log; calls are recorded in the state instead."""

    # -- routing -------------------------------------------------------------------------------

    def do_GET(self) -> None:
        """Control reads and system/getApiVersion."""
        path = urlsplit(self.path).path
        state = self.server.state
        if path == "/_sandbox/calls":
            self._send_json(200, state.calls_as_json())
        elif path == "/_sandbox/stats":
            self._send_json(200, state.stats())
        elif path == "/_sandbox/sends":
            self._send_json(200, state.sends_as_json())
        elif path == f"{self.server.prefix}/system/getApiVersion":
            self._engage("system/getApiVersion", None)
        else:
            self._not_found()

    def do_POST(self) -> None:
        """Control writes, the REST operations and SOAP."""
        path = urlsplit(self.path).path
        body = self._read_body()
        if path.startswith("/_sandbox/"):
            self._control(path, body)
        elif path == f"{self.server.prefix}/contact/get":
            self._engage("contact/get", body)
        elif path == f"{self.server.prefix}/message/sendSingle":
            self._engage("message/sendSingle", body)
        elif path == self.server.soap_path:
            self._soap(body)
        else:
            self._not_found()

    # -- control API ---------------------------------------------------------------------------

    def _control(self, path: str, raw: bytes) -> None:
        state = self.server.state
        try:
            data = json.loads(raw or b"{}")
            if path == "/_sandbox/reset":
                state.reset()
            elif path == "/_sandbox/contacts":
                state.add_contacts(data["contacts"])
            elif path == "/_sandbox/messages":
                state.add_messages(data["messages"])
            elif path == "/_sandbox/faults":
                state.set_faults(data)
            else:
                self._not_found()
                return
        except (ValueError, KeyError, TypeError) as err:
            self._send_json(400, {"error": f"{type(err).__name__}: {err}"})
            return
        self._send_json(200, {"ok": True})

    # -- Engage REST ---------------------------------------------------------------------------

    def _engage(self, operation: str, raw: bytes | None) -> None:
        split = urlsplit(self.path)
        query = dict(parse_qsl(split.query))
        body = _parse_json(raw)
        call = Call(operation, self.command, split.path, query, body, self._authorized(), 0, now())
        go_on, fault = self.admit(call, self._send_json, self._send_fault_status)
        if not go_on:
            return
        answer, payload = self._run(operation, query, body)
        if self.dropped_after(call, fault):
            return
        call.status = answer.status
        if answer.status == 200 and payload is not None:
            self._send_raw(200, payload, "application/json")
        elif answer.body is not None:
            self._send_json(answer.status, answer.body)
        else:
            self._send_raw(answer.status, b"", None)

    def admit(
        self,
        call: Call,
        refuse: Callable[[int, dict[str, str]], None],
        inject: Callable[[int], None],
    ) -> tuple[bool, int | str | None]:
        """Record the call, check credentials, apply faults (REST and SOAP alike).

        Returns whether to act on the request, and the fault still due after acting.
        """
        state = self.server.state
        state.record(call)
        if self.headers.get("Authorization") is None:
            call.status = 401
            refuse(401, _error("CLIENT", "PERMISSION_DENIED", "Authentication required."))
            return False, None
        if not call.authorized:
            call.status = 403
            refuse(403, _error("CLIENT", "PERMISSION_DENIED", "Access denied."))
            return False, None
        delay, fault = state.next_fault(call.operation)
        if delay:
            time.sleep(delay)
        if fault == DROP_BEFORE:
            call.status = DROP_BEFORE
            self._drop()
            return False, None
        if isinstance(fault, int):
            call.status = fault
            inject(fault)
            return False, None
        return True, fault

    def dropped_after(self, call: Call, fault: int | str | None) -> bool:
        """Hang up without an answer after acting, when the fault plan says so."""
        if fault != DROP_AFTER:
            return False
        call.status = DROP_AFTER
        self._drop()
        return True

    def _run(self, operation: str, query: dict[str, str], body: Any) -> tuple[Answer, bytes | None]:
        state = self.server.state
        if operation == "system/getApiVersion":
            return Answer(200), json.dumps(API_VERSION).encode()
        if not isinstance(body, dict):
            return Answer(400, _error("CLIENT", "INVALID_REQUEST", "Body must be JSON.")), None
        if operation == "contact/get":
            answer, contact_id = state.contact_get(str(body.get("type")), str(body.get("value")))
            if contact_id is None:
                return answer, None
            contact = {"contactId": contact_id, "identifier": body.get("value")}
            return answer, json.dumps(contact).encode()
        message_id, recipient_id = query.get("messageId", ""), query.get("recipientId", "")
        for name, value in (("messageId", message_id), ("recipientId", recipient_id)):
            if not value.isdigit():
                missing = _error("CLIENT", "MISSING_PARAMETER", f"Parameter {name} is missing.")
                return Answer(400, {**missing, "parameterName": name}), None
        params = {
            str(p.get("name")): str(p.get("value"))
            for p in body.get("parameters", [])
            if isinstance(p, dict)
        }
        return state.send_single(int(message_id), int(recipient_id), params), None

    def _soap(self, raw: bytes) -> None:
        from tasks.sandbox import soap  # noqa: PLC0415  (SOAP support is optional)

        soap.handle(self, raw)

    # -- helpers -------------------------------------------------------------------------------

    def _authorized(self) -> bool:
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        state = self.server.state
        return user == state.username and password == state.password

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send_fault_status(self, status: int) -> None:
        if status >= 500:
            self._send_json(status, server_error_body(status))
        elif status == 429:
            self._send_json(
                429, _error("SERVER", "OPERATION_DISABLED", "Too many requests."), retry_after=1
            )
        elif status in (401, 403):
            self._send_json(status, _error("CLIENT", "PERMISSION_DENIED", "Access denied."))
        else:
            self._send_json(status, _error("CLIENT", "INVALID_REQUEST", "Injected fault."))

    def _not_found(self) -> None:
        self._send_json(404, _error("CLIENT", "INVALID_REQUEST", "Not Found"))

    def _send_json(self, status: int, data: Any, *, retry_after: int | None = None) -> None:
        extra = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        self._send_raw(status, json.dumps(data).encode(), "application/json", extra)

    def _send_raw(
        self,
        status: int,
        payload: bytes,
        content_type: str | None,
        extra: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _drop(self) -> None:
        # Reset the connection without an answer: the client cannot know what happened.
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


def _error(actor: str, code: str, message: str) -> dict[str, str]:
    return {"errorActor": actor, "errorCode": code, "message": message}


def _parse_json(raw: bytes | None) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


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
    ) -> None:
        self.state = state or SandboxState()
        self._server = SandboxHTTPServer((host, port), self.state, prefix=prefix)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="engage-sandbox", daemon=True
        )

    @property
    def root_url(self) -> str:
        """``http://host:port`` of the server."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

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
