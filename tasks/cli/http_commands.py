"""``engage-sms api`` (the HTTP front door) and ``engage-sms tokens create|list|revoke``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from tasks.cli.dlq import whole_number
from tasks.cli.exit_codes import ExitCode

SCOPES = ("send", "read", "operate")


def add_http_commands(commands: Any) -> None:
    """Register ``api`` and ``tokens`` on the CLI's parser."""
    api = commands.add_parser("api", help="serve the HTTP API and the operator console")
    api.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback)")
    api.add_argument("--port", type=int, default=8080)
    api.add_argument(
        "--proxy-headers",
        action="store_true",
        help="trust X-Forwarded-Proto/For from a proxy on 127.0.0.1 (TLS ends there)",
    )
    api.set_defaults(handler=_api)

    tokens = commands.add_parser("tokens", help="API tokens of the HTTP front door")
    sub = tokens.add_subparsers(required=True, metavar="ACTION")
    create = sub.add_parser("create", help="make a token; it is printed once, on the last line")
    create.add_argument("name")
    create.add_argument("--scope", choices=SCOPES, required=True)
    create.add_argument(
        "--daily-cap", type=whole_number, metavar="N", help="at most N new sends per UTC day"
    )
    create.set_defaults(handler=_on_redis(_create))
    listing = sub.add_parser("list", help="names, scopes, created, last used (never the token)")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=_on_redis(_list))
    revoke = sub.add_parser("revoke", help="revoke a token at once (its sessions end too)")
    revoke.add_argument("name")
    revoke.set_defaults(handler=_on_redis(_revoke))


def _api(args: argparse.Namespace) -> ExitCode:
    # Imported here: the [http] extra (FastAPI, uvicorn) is needed by this command only.
    from tasks.http.server import serve  # noqa: PLC0415

    serve(args.host, args.port, proxy_headers=args.proxy_headers)
    return ExitCode.OK


def _create(args: argparse.Namespace) -> ExitCode:
    from tasks.http.tokens import Scope, TokenNameTaken  # noqa: PLC0415  (the [http] extra)

    store = _store()
    try:
        new = store.create(args.name, Scope(args.scope), daily_cap=args.daily_cap)
    except TokenNameTaken:
        print(f"engage-sms: a token named {args.name!r} exists; revoke it first", file=sys.stderr)
        return ExitCode.USAGE
    except ValueError as err:
        print(f"engage-sms: {err}", file=sys.stderr)
        return ExitCode.USAGE
    cap = f", at most {args.daily_cap} sends a day" if args.daily_cap else ""
    print(f"token {args.name!r} created: scope {args.scope}{cap}")
    print(f"callback secret (signs its callbacks' Engage-Signature): {new.token.callback_secret}")
    print("the token, shown this once:")
    print(new.text)
    return ExitCode.OK


def _list(args: argparse.Namespace) -> ExitCode:
    tokens = [token.listed() for token in _store().tokens()]
    if args.json:
        print(json.dumps(tokens, indent=2))
    elif not tokens:
        print("no tokens")
    for row in [] if args.json else tokens:
        print(
            f"{row['name']:<24} {row['scope']:<8} created {row['created_at']}  "
            f"last used {row['last_used_at'] or 'never'}"
            + (f"  daily cap {row['daily_cap']}" if row["daily_cap"] else "")
        )
    return ExitCode.OK


def _revoke(args: argparse.Namespace) -> ExitCode:
    if not _store().revoke(args.name):
        print(f"engage-sms: no token named {args.name!r}", file=sys.stderr)
        return ExitCode.FAILED
    print(f"token {args.name!r} revoked")
    return ExitCode.OK


def _on_redis(
    action: Callable[[argparse.Namespace], ExitCode],
) -> Callable[[argparse.Namespace], ExitCode]:
    """``action`` with Redis outages as ServiceUnavailable (exit 4, one line)."""

    def handler(args: argparse.Namespace) -> ExitCode:
        # Imported here: they load the configuration and Celery, which `sandbox` never needs.
        from tasks.core.outages import unavailable_as  # noqa: PLC0415
        from tasks.worker.app import engage_settings  # noqa: PLC0415

        with unavailable_as("redis", engage_settings().redis_url):
            return action(args)

    return handler


def _store() -> Any:
    from tasks.http.services import current_services  # noqa: PLC0415  (the [http] extra)

    return current_services().tokens
