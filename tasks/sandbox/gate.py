"""What every sandbox call goes through before its transport acts: record, credentials, faults.

REST and SOAP both pass each Engage call to :func:`admit`, which answers the call itself when
credentials are missing or wrong, or when the fault plan puts something else in Engage's place
(a drop, a status, a proxy's redirect or login page). The transports only encode the rest.
"""

from __future__ import annotations

import base64
import email.utils
import functools
import html
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

from tasks.sandbox.faults import (
    DROP_AFTER,
    DROP_BEFORE,
    ECHO,
    GZIP_BOMB,
    HTML,
    REDIRECT,
    RETRY_AFTER,
    SOAP12_FAULT,
    STATUS,
    TLS_BREAK,
    TRICKLE,
    TRICKLE_SECONDS,
    Fault,
)
from tasks.sandbox.state import Call, SandboxState, now, server_error_body

API_VERSION = "19.0"
#: The operation a request to the fake proxy's login page is recorded under.
LOGIN = "proxy/login"
LOGIN_PATH = "/login"

#: Sends Engage's error answer with this status, error body and extra headers.
Refuse = Callable[[int, Mapping[str, Any], Mapping[str, str]], None]
#: Inflated size of a gzip bomb without a size of its own.
BOMB_MIB = 1024


class Exchange(Protocol):
    """One HTTP request and its answer, as the REST and SOAP endpoints see it."""

    command: str
    path: str

    def header(self, name: str) -> str | None:
        """A request header, or None."""

    def send(
        self,
        status: int,
        payload: bytes,
        content_type: str | None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer with this status, body and headers."""

    def drop(self) -> None:
        """Hang up without answering."""

    def trickle(self, seconds_per_byte: float) -> None:
        """Write the next answer one byte at a time, this many seconds apart."""

    def break_record(self) -> None:
        """Write bytes that are no valid TLS record (raw bytes on plain HTTP), then hang up."""


@dataclass(frozen=True)
class Admission:
    """Whether the transport is to act on the call, and the fault still due after it acts.

    When it is not to act, ``after`` may hold a fault only the transport can answer (a SOAP 1.2
    fault).
    """

    proceed: bool
    after: Fault | None = None


def admit(exchange: Exchange, state: SandboxState, call: Call, *, refuse: Refuse) -> Admission:
    """Record the call, check credentials, apply the fault due (REST and SOAP alike).

    ``refuse`` answers an error in the transport's form: Engage's error fields, extra headers.
    """
    state.record(call)
    if exchange.header("Authorization") is None:
        call.status = 401
        refuse(401, error_body("CLIENT", "PERMISSION_DENIED", "Authentication required."), {})
        return Admission(proceed=False)
    if not call.authorized:
        call.status = 403
        refuse(403, error_body("CLIENT", "PERMISSION_DENIED", "Access denied."), {})
        return Admission(proceed=False)
    delay, fault = state.next_fault(call.operation)
    if delay:
        time.sleep(delay)
    if fault is None or not fault.instead:
        return Admission(proceed=True, after=fault)
    if fault.kind == DROP_BEFORE:
        call.status = DROP_BEFORE
        exchange.drop()
    elif fault.kind == STATUS:
        call.status = fault.status
        refuse(fault.status, *injected_error(fault.status))
    elif fault.kind == REDIRECT:
        call.status = fault.status
        _redirect(exchange, fault)
    elif fault.kind == HTML:
        call.status = 200
        echo = identifier_of(call) if fault.argument == "echo" else None
        exchange.send(200, login_page(echo), "text/html; charset=utf-8")
    elif fault.kind == ECHO:
        call.status = fault.status
        refuse(fault.status, echo_body(call, fault.status), {})
    elif fault.kind == RETRY_AFTER:
        call.status = 429
        too_many = error_body("SERVER", "OPERATION_DISABLED", "Too many requests.")
        refuse(429, too_many, {"Retry-After": retry_after_value(fault.argument)})
    elif fault.kind == GZIP_BOMB:
        call.status = fault.status
        size = int(fault.argument) if fault.argument else BOMB_MIB
        exchange.send(fault.status, gzip_bomb(size), "text/plain", {"Content-Encoding": "gzip"})
    elif fault.kind == SOAP12_FAULT:
        call.status = fault.status
        return Admission(proceed=False, after=fault)
    return Admission(proceed=False)


def dropped_after(exchange: Exchange, call: Call, fault: Fault | None) -> bool:
    """Hang up (or break the TLS record) without an answer after acting, when the plan says so."""
    if fault is None or fault.kind not in (DROP_AFTER, TLS_BREAK):
        return False
    call.status = fault.kind
    if fault.kind == TLS_BREAK:
        exchange.break_record()
    else:
        exchange.drop()
    return True


def trickled(exchange: Exchange, call: Call, fault: Fault | None) -> None:
    """Slow the answer about to be sent down to a trickle, when the fault plan says so."""
    if fault is None or fault.kind != TRICKLE:
        return
    call.status = TRICKLE
    exchange.trickle(float(fault.argument or TRICKLE_SECONDS))


def retry_after_value(argument: str) -> str:
    """The Retry-After header of a ``retry_after`` step: as written, or ``past``: an old date."""
    if argument == "past":
        return email.utils.formatdate(time.time() - 3600, usegmt=True)
    return argument


@functools.cache
def gzip_bomb(mib: int) -> bytes:
    """A gzip body that inflates to ``mib`` MiB of zeros (about 1 KiB compressed per MiB)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: gzip framing
    zeros = bytes(1 << 20)
    parts = [packer.compress(zeros) for _ in range(mib)]
    return b"".join([*parts, packer.flush()])


def authorized(header: str | None, state: SandboxState) -> bool:
    """The Basic credentials in ``header`` are the sandbox's API user."""
    if not header or not header.startswith("Basic "):
        return False
    try:
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return False
    return user == state.username and password == state.password


def serve_login(exchange: Exchange, state: SandboxState) -> None:
    """The fake proxy's login page: recorded, so a client that followed a redirect is seen."""
    state.record(Call(LOGIN, exchange.command, LOGIN_PATH, {}, None, False, 200, now()))
    exchange.send(200, login_page(None), "text/html; charset=utf-8")


def login_page(echo: str | None) -> bytes:
    """A proxy's sign-in page; ``echo`` is quoted in its title, as some portals do."""
    title = "Sign in" if echo is None else f"Sign in to continue with {echo}"
    return (
        "<!DOCTYPE html>\n<html><head><title>"
        f"{html.escape(title)}</title></head>"
        '<body><form method="post"><input name="user"><input name="password" type="password">'
        "</form></body></html>"
    ).encode()


def identifier_of(call: Call) -> str:
    """What the call names its recipient by: the identifier's value, or the recipientId."""
    if isinstance(call.body, dict) and call.body.get("value") is not None:
        return str(call.body["value"])
    return call.query.get("recipientId", "")


def echo_body(call: Call, status: int) -> dict[str, str]:
    """Engage's error fields quoting what the call named, as some error messages do."""
    if call.operation == "contact/get":
        values = [identifier_of(call)]
    else:
        parameters = call.body.get("parameters", []) if isinstance(call.body, dict) else []
        values = [str(p.get("value")) for p in parameters if isinstance(p, dict)]
    quoted = ", ".join(f"'{value}'" for value in values)
    if status >= 500:
        body = error_body("SERVER", "UNEXPECTED_ERROR", f"Failed while processing {quoted}.")
    else:
        body = error_body("CLIENT", "INVALID_PARAMETER", f"Invalid value {quoted}.")
    return {**body, "value": ", ".join(values)}


def error_body(actor: str, code: str, message: str) -> dict[str, str]:
    """Engage's error fields."""
    return {"errorActor": actor, "errorCode": code, "message": message}


def injected_error(status: int) -> tuple[Mapping[str, Any], Mapping[str, str]]:
    """The error fields and extra headers an injected fault status (a STATUS fault) gets."""
    if status >= 500:
        return server_error_body(status), {}
    if status == 429:
        return error_body("SERVER", "OPERATION_DISABLED", "Too many requests."), {
            "Retry-After": "1"
        }
    if status in (401, 403):
        return error_body("CLIENT", "PERMISSION_DENIED", "Access denied."), {}
    return error_body("CLIENT", "INVALID_REQUEST", "Injected fault."), {}


def _redirect(exchange: Exchange, fault: Fault) -> None:
    location = fault.argument
    if not location:
        # Back to this very server, so a client that follows the redirect shows in the call log.
        host = exchange.header("Host") or "127.0.0.1"
        location = f"http://{host}{LOGIN_PATH}?next={quote(exchange.path, safe='')}"
    page = b"<html><body>Moved: please sign in.</body></html>"
    exchange.send(fault.status, page, "text/html", {"Location": location})
