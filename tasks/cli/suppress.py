"""``engage-sms suppress add|remove|list|import``: the opt-out list (README: Sending policy).

Values are read as sends read them (numbers normalised with ``ENGAGE_DEFAULT_REGION``): a value
with ``@`` is an e-mail address, anything else a mobile number, unless ``--type`` says which.
The list stores keyed digests only, so ``list`` shows masked entries and cannot show more.
``import FILE`` takes one value per line (blank lines and ``#`` comments skipped) and checks
every line first: one bad line and nothing is added; errors name the line, not its value.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tasks.cli.exit_codes import ExitCode
from tasks.core.errors import InvalidSendRequest
from tasks.core.request import Identifier, build_identifier

TYPES = ("auto", "mobile", "email", "app_alias", "external_id", "recipient_id")
#: Lines an import reports as bad at most (the rest are counted).
SHOWN_ERRORS = 20


def add_suppress_commands(commands: Any) -> None:
    """Register ``suppress`` and its subcommands on the CLI's parser."""
    suppress = commands.add_parser("suppress", help="the opt-out list: never send to these")
    sub = suppress.add_subparsers(required=True, metavar="ACTION")
    for name, help_text in (
        ("add", "opt recipients out (no send to them is made)"),
        ("remove", "take recipients off the list"),
    ):
        action = sub.add_parser(name, help=help_text)
        action.add_argument("values", nargs="+", metavar="VALUE")
        _type_option(action)
        action.set_defaults(handler=_on_runtime(_add if name == "add" else _remove))
    listing = sub.add_parser("list", help="the entries, masked, oldest first")
    listing.add_argument("--limit", type=int, default=None, metavar="N")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=_on_runtime(_list))
    importing = sub.add_parser("import", help="add every value of FILE (one per line)")
    importing.add_argument("file", type=Path, metavar="FILE")
    _type_option(importing)
    importing.set_defaults(handler=_on_runtime(_import))


def _type_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--type",
        choices=TYPES,
        default="auto",
        help="how to read the values (default auto: e-mail if it has @, else mobile)",
    )


def read_identifier(value: str, kind: str, numbers: Any) -> Identifier:
    """One value as an identifier of ``kind`` (``auto``: e-mail with @, else mobile)."""
    if kind == "auto":
        kind = "email" if "@" in value else "mobile"
    return build_identifier(**{kind: value.strip()}, numbers=numbers)


def _on_runtime(action: Callable[[argparse.Namespace, Any], ExitCode]) -> Callable[..., ExitCode]:
    """A handler running ``action`` with this process's runtime, Redis outages named."""

    def handler(args: argparse.Namespace) -> ExitCode:
        # Imported here: they load the configuration and Celery, which `sandbox` never needs.
        from tasks.core.outages import unavailable_as  # noqa: PLC0415
        from tasks.delivery.runtime import current_runtime  # noqa: PLC0415
        from tasks.worker.app import engage_settings  # noqa: PLC0415

        rt = current_runtime(engage_settings())
        with unavailable_as("redis", rt.settings.redis_url):
            return action(args, rt)

    return handler


def _identifiers(values: list[str], kind: str, numbers: Any) -> list[Identifier]:
    return [read_identifier(v, kind, numbers) for v in values]


def _add(args: argparse.Namespace, rt: Any) -> ExitCode:
    added = rt.suppressions.add(_identifiers(args.values, args.type, rt.settings.numbers))
    print(json.dumps({"added": added, "already_listed": len(set(args.values)) - added}))
    return ExitCode.OK


def _remove(args: argparse.Namespace, rt: Any) -> ExitCode:
    removed = rt.suppressions.remove(_identifiers(args.values, args.type, rt.settings.numbers))
    print(json.dumps({"removed": removed, "not_listed": len(set(args.values)) - removed}))
    return ExitCode.OK if removed else ExitCode.FAILED


def _list(args: argparse.Namespace, rt: Any) -> ExitCode:
    entries = rt.suppressions.entries(args.limit)
    if args.json:
        print(json.dumps([e.__dict__ for e in entries], indent=2))
    else:
        for entry in entries:
            print(f"{entry.added_at}  {entry.recipient}  {entry.digest}")
        print(f"{rt.suppressions.count()} opted out")
    return ExitCode.OK


def _import(args: argparse.Namespace, rt: Any) -> ExitCode:
    try:
        lines = args.file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise InvalidSendRequest("FILE", f"cannot read {args.file}: {type(err).__name__}") from None
    identifiers: list[Identifier] = []
    errors: list[str] = []
    for number, line in enumerate(lines, start=1):
        value = line.split("#", 1)[0].strip()
        if not value:
            continue
        try:
            identifiers.append(read_identifier(value, args.type, rt.settings.numbers))
        except InvalidSendRequest as err:
            errors.append(f"line {number}: {err.problem}")
    if errors:
        shown = errors[:SHOWN_ERRORS]
        more = f" (and {len(errors) - len(shown)} more)" if len(errors) > len(shown) else ""
        raise InvalidSendRequest(str(args.file), "nothing imported; " + "; ".join(shown) + more)
    added = rt.suppressions.add(identifiers)
    print(json.dumps({"read": len(identifiers), "added": added}))
    return ExitCode.OK
