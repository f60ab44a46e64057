"""``engage-sms cancel``: stop sends that have not started, by key, by lane or by schedule.

Keys named on the command line are cancelled at once. A lane or a schedule is a batch: on a
terminal it shows the count and waits for ``y``; without one it refuses unless ``--yes`` is given;
``--dry-run`` lists the keys and changes nothing. Prints each key's outcome as JSON and exits 0
when every send named was stopped (``cancelled_now``) or was cancelled already.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from tasks.cli.dlq import YES, Console
from tasks.cli.exit_codes import ExitCode

_STOPPED = ("cancelled_now", "cancelled")


def add_cancel_command(commands: Any) -> None:
    """Register ``cancel`` on the CLI's parser."""
    cancel = commands.add_parser(
        "cancel", help="stop queued or retrying sends: final state cancelled, never sent"
    )
    cancel.add_argument("keys", nargs="*", metavar="KEY", help="idempotency keys (act at once)")
    cancel.add_argument(
        "--lane", choices=("urgent", "normal", "bulk"), help="every unfinished send of this lane"
    )
    cancel.add_argument(
        "--schedule", metavar="NAME", help="every unfinished send of this schedule's runs"
    )
    flags = cancel.add_mutually_exclusive_group()
    flags.add_argument("--dry-run", action="store_true", help="list what would be cancelled")
    flags.add_argument("--yes", action="store_true", help="cancel a batch without asking")
    cancel.set_defaults(handler=_cancel)


def _cancel(args: argparse.Namespace) -> ExitCode:
    # Imported here: they load the configuration and Celery.
    from tasks.api import cancel_sends  # noqa: PLC0415
    from tasks.core.outages import unavailable_as  # noqa: PLC0415
    from tasks.core.send_options import parse_priority  # noqa: PLC0415
    from tasks.delivery.runtime import current_runtime  # noqa: PLC0415
    from tasks.worker import cancellation  # noqa: PLC0415
    from tasks.worker.app import engage_settings  # noqa: PLC0415

    if not args.keys and args.lane is None and args.schedule is None:
        print("engage-sms: name keys, --lane or --schedule", file=sys.stderr)
        return ExitCode.USAGE
    batch: list[str] = []
    if args.lane is not None or args.schedule is not None:
        rt = current_runtime(engage_settings())
        lane = None if args.lane is None else parse_priority(args.lane)
        with unavailable_as("redis", rt.settings.redis_url):
            batch = cancellation.select(rt, lane=lane, schedule=args.schedule)
    if args.dry_run:
        print(f"dry run: would cancel {len(args.keys) + len(batch)} sends; nothing changed")
        for key in [*args.keys, *batch]:
            print(key)
        return ExitCode.OK
    if batch and not args.yes and not _confirmed(args.stdin, len(batch)):
        return ExitCode.USAGE
    outcomes = cancel_sends([*args.keys, *batch])
    print(json.dumps(outcomes, indent=2))
    return ExitCode.OK if all(o in _STOPPED for o in outcomes.values()) else ExitCode.FAILED


def _confirmed(stdin: Console | None, count: int) -> bool:
    if stdin is None or not stdin.isatty():
        print(
            f"engage-sms: stdin is not a terminal, so not asking: pass --yes to cancel {count} "
            "sends, or --dry-run to list them",
            file=sys.stderr,
        )
        return False
    print(f"Cancel {count} sends? [y/N] ", end="", file=sys.stderr, flush=True)
    try:
        answer = stdin.readline()
    except KeyboardInterrupt:
        answer = ""
    if answer.strip().lower() in YES:
        return True
    print("engage-sms: nothing cancelled", file=sys.stderr)
    return False
