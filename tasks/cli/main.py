"""engage-sms: enqueue sends, read their status, steer the dead-letter store, run the sandbox.

Every command exits with a :class:`tasks.cli.exit_codes.ExitCode`, which ``--help`` lists.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from tasks.cli.cancel import add_cancel_command
from tasks.cli.dlq import Console, add_dlq_commands
from tasks.cli.exit_codes import ExitCode, help_epilog
from tasks.cli.http_commands import add_http_commands
from tasks.cli.ops import add_ops_commands
from tasks.cli.suppress import add_suppress_commands
from tasks.core.errors import (
    ConfigurationError,
    EngageSmsError,
    IdempotencyConflict,
    InvalidSendRequest,
    ServiceUnavailable,
)

#: States a send ends in.
#: The sending policy's final states: not sent, not dead letters (exit 1 like one).
NOT_SENT_ENDS = ("expired", "capped", "suppressed")
FINAL_STATES = ("sent", "dead_lettered", "cancelled", *NOT_SENT_ENDS)
#: ``engage-sms sandbox --help``: what it is and what it knows.
SANDBOX_DESCRIPTION = """\
A local stand-in for Mapp Engage: REST contact/get, message/sendSingle and
system/getApiVersion under --prefix, SOAP (the same operations) at /api/soap/v17,
HTTP Basic with --username/--password. Point workers at it with
ENGAGE_BASE_URL=http://HOST:PORT/api/rest/v19 (or .../api/soap/v17 and
ENGAGE_TRANSPORT=soap)."""
SANDBOX_EPILOG = """\
seed data (back after POST /_sandbox/reset):
  contact MOBILE 48505606707 (+48 505 606 707) -> contactId 33457
  contact EMAIL ann@example.com                -> contactId 33458
  prepared message 23541 (no required parameters)

control API (no login; JSON; a wrong body is a 400 saying what was expected):
  GET  /_sandbox/calls | /_sandbox/stats | /_sandbox/sends
  POST /_sandbox/reset
  POST /_sandbox/contacts  {"contacts": [{"type": "MOBILE", "value": "48...", "contactId": 1}]}
  POST /_sandbox/messages  {"messages": [{"messageId": 1, "requiredParameters": ["name"]}]}
  POST /_sandbox/faults    {"script": {"contact/get": [503, "drop_after"]}}  (README: Sandbox)
"""


class _DefaultsAndLayout(
    argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter
):
    """Option defaults in ``--help``, descriptions and epilogs laid out as written."""


#: How often ``send --wait`` asks for the status.
POLL_INTERVAL = 0.1


def main(argv: Sequence[str] | None = None, *, stdin: Console | None = None) -> ExitCode:
    """Entry point of the ``engage-sms`` command; ``stdin`` answers its questions (tests)."""
    parser = _parser()
    args = parser.parse_args(argv)
    args.stdin = sys.stdin if stdin is None else stdin
    handler: Callable[[argparse.Namespace], ExitCode] = args.handler
    try:
        return handler(args)
    except ServiceUnavailable as err:
        print(f"engage-sms: {err}", file=sys.stderr)
        return ExitCode.UNAVAILABLE
    except ConfigurationError as err:
        print(f"engage-sms: configuration error: {err}", file=sys.stderr)
    except (InvalidSendRequest, IdempotencyConflict) as err:
        print(f"engage-sms: {err}", file=sys.stderr)
    except EngageSmsError as err:
        print(f"engage-sms: {err}", file=sys.stderr)
        return ExitCode.FAILED
    return ExitCode.USAGE


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="engage-sms",
        description=__doc__.splitlines()[0],
        epilog=help_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    send = commands.add_parser("send", help="enqueue one prepared SMS")
    send.add_argument("--message-id", required=True, help="the prepared message's id in Engage")
    who = send.add_mutually_exclusive_group(required=True)
    who.add_argument(
        "--mobile",
        help="mobile number with country code (+48 505 606 707, 0048...); "
        "a national one (0505 606 707) needs ENGAGE_DEFAULT_REGION",
    )
    who.add_argument("--email", help="the contact's e-mail address")
    who.add_argument("--app-alias", help="the contact's mobile app alias")
    who.add_argument("--external-id", help="the contact's id in an external system")
    who.add_argument("--recipient-id", help="the Engage contact id (skips the lookup)")
    send.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE", help="placeholder value"
    )
    send.add_argument(
        "--idempotency-key",
        help="one key per logical send: the same command with the same key sends once "
        "(default: a new random key, auto:<uuid>, so running the command twice sends twice)",
    )
    send.add_argument(
        "--priority",
        choices=("urgent", "normal", "bulk"),
        default="normal",
        help="the lane: a waiting urgent send gets the next Engage slot before normal ones, "
        "normal before bulk (default: normal)",
    )
    send.add_argument(
        "--on-done",
        metavar="TASK",
        help="Celery task to publish with the final status once sent or dead-lettered "
        "(default: ENGAGE_ON_DONE_TASK)",
    )
    deadline = send.add_mutually_exclusive_group()
    deadline.add_argument(
        "--expires-in",
        type=float,
        metavar="SECONDS",
        help="deadline: not sent within SECONDS, the send ends expired "
        "(default: the lane's, ENGAGE_URGENT_TTL etc.)",
    )
    deadline.add_argument(
        "--send-by",
        type=_aware_datetime,
        metavar="ISO8601",
        help="deadline as a moment with its offset, e.g. 2026-12-05T09:00:00+01:00",
    )
    send.add_argument(
        "--create-contact",
        action="store_true",
        default=None,
        help="create the recipient in Engage if it does not exist "
        "(default: ENGAGE_CREATE_CONTACTS)",
    )
    send.add_argument(
        "--wait",
        type=_seconds,
        metavar="SECONDS",
        help="wait up to SECONDS (0 or more) for the outcome; exit 0 only if sent",
    )
    send.set_defaults(handler=_send)

    status = commands.add_parser("status", help="show where a send stands (JSON)")
    status.add_argument("key", help="the idempotency key")
    status.set_defaults(handler=_status)

    add_dlq_commands(commands)
    add_cancel_command(commands)
    add_ops_commands(commands)
    add_suppress_commands(commands)
    add_http_commands(commands)

    sandbox = commands.add_parser(
        "sandbox",
        help="run the local Engage sandbox in the foreground",
        description=SANDBOX_DESCRIPTION,
        epilog=SANDBOX_EPILOG,
        formatter_class=_DefaultsAndLayout,
    )
    sandbox.add_argument("--host", default="127.0.0.1", help="address to listen on")
    sandbox.add_argument("--port", type=int, default=8099, help="port to listen on")
    sandbox.add_argument("--prefix", default="/api/rest/v19", help="path prefix of the REST API")
    sandbox.add_argument("--username", default="api@example.com", help="the API user it accepts")
    sandbox.add_argument(
        "--password", default="sandbox-password", help="that user's password (a local one)"
    )
    sandbox.set_defaults(handler=_sandbox)

    demo = commands.add_parser("demo", help="start Redis, the sandbox and a worker; send one SMS")
    demo.add_argument(
        "--hold",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="keep the worker, sandbox and Flower up this long afterwards, to look around",
    )
    where = demo.add_mutually_exclusive_group()
    where.add_argument(
        "--sentinel",
        action="store_true",
        help="run on a throwaway Sentinel set of the demo's own (a primary, a replica, three "
        "sentinels on free ports) instead of one Redis server",
    )
    where.add_argument(
        "--redis-url",
        metavar="URL",
        help="use this Redis (its queues and engage-demo:* keys) instead of a throwaway server "
        "of the demo's own (default)",
    )
    demo.set_defaults(handler=_demo)
    return parser


def _send(args: argparse.Namespace) -> ExitCode:
    from tasks.api import delivery_status, send_prepared_sms  # noqa: PLC0415  (loads Celery)

    handle = send_prepared_sms(
        args.message_id,
        mobile=args.mobile,
        email=args.email,
        app_alias=args.app_alias,
        external_id=args.external_id,
        recipient_id=args.recipient_id,
        parameters=_parameters(args.param),
        idempotency_key=args.idempotency_key,
        priority=args.priority,
        on_done=args.on_done,
        expires_in=args.expires_in,
        send_by=args.send_by,
        create_contact=args.create_contact,
    )
    # One "state": the handle's at enqueue, the send's as last seen with --wait.
    summary: dict[str, Any] = handle.to_dict()
    if args.wait is None:
        _print_json(summary)
        return ExitCode.OK
    status = _wait_for_outcome(delivery_status, handle.key, args.wait)
    summary["state"] = status["state"]
    for field in ("reason", "detail"):
        if field in status:
            summary[field] = status[field]
    _print_json(summary)
    if status["state"] == "sent":
        return ExitCode.OK
    if status["state"] == "cancelled":
        print("engage-sms: not sent: cancelled", file=sys.stderr)
        return ExitCode.FAILED
    if status["state"] == "dead_lettered":
        print(
            f"engage-sms: not sent: {status.get('reason')}: {status.get('detail')}", file=sys.stderr
        )
        return ExitCode.FAILED
    if status["state"] in NOT_SENT_ENDS:
        print(f"engage-sms: not sent: {status['state']}: {status.get('detail')}", file=sys.stderr)
        return ExitCode.FAILED
    print(f"engage-sms: still {status['state']} after {args.wait:g} s", file=sys.stderr)
    return ExitCode.PENDING


def _wait_for_outcome(
    status_of: Callable[[str], dict[str, Any]], key: str, seconds: float
) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        status = status_of(key)
        if status["state"] in FINAL_STATES or time.monotonic() >= deadline:
            return status
        time.sleep(POLL_INTERVAL)


def _seconds(text: str) -> float:
    """``--wait``: a finite number of seconds, 0 or more (argparse turns the error into exit 2)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not 0 <= value < math.inf:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds, got {text!r}")
    return value


def _aware_datetime(text: str) -> datetime:
    """``--send-by``: ISO 8601 with an offset (argparse turns the error into exit 2)."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an ISO 8601 moment, got {text!r}") from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"needs an offset such as +01:00 or Z, got {text!r}")
    return value


def _parameters(pairs: list[str]) -> dict[str, str]:
    parameters: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise InvalidSendRequest("--param", f"expected NAME=VALUE, got {pair!r}")
        if name in parameters:
            raise InvalidSendRequest("--param", f"{name!r} given twice")
        parameters[name] = value
    return parameters


def _status(args: argparse.Namespace) -> ExitCode:
    from tasks.api import delivery_status  # noqa: PLC0415  (loads Celery)

    status = delivery_status(args.key)
    _print_json(status)
    return ExitCode.OK if status["state"] != "unknown" else ExitCode.FAILED


def _sandbox(args: argparse.Namespace) -> ExitCode:
    # Imported here: only this command runs the sandbox.
    from tasks.sandbox.server import serve_forever  # noqa: PLC0415
    from tasks.sandbox.state import SandboxState  # noqa: PLC0415

    state = SandboxState(username=args.username, password=args.password)
    print(f"Engage sandbox on http://{args.host}:{args.port}{args.prefix}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        serve_forever(args.host, args.port, args.prefix, state)
    return ExitCode.OK


def _demo(args: argparse.Namespace) -> ExitCode:
    from tasks.cli.demo import run_demo  # noqa: PLC0415  (starts processes: demo only)

    try:
        return run_demo(hold=args.hold, redis_url=args.redis_url, sentinel=args.sentinel)
    except RuntimeError as err:  # no Redis server to start, or a process that would not start
        print(f"engage-sms: demo: {err}", file=sys.stderr)
        return ExitCode.FAILED


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=False))
