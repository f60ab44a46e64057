"""``engage-sms dlq ...``: list, show, replay and purge dead-lettered sends."""

from __future__ import annotations

import argparse
import json
from typing import Any

from tasks.state.dead_letters import REASONS

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def add_dlq_commands(commands: Any) -> None:
    """Register the ``dlq`` command and its subcommands on the CLI's parser."""
    dlq = commands.add_parser("dlq", help="the dead-letter store")
    sub = dlq.add_subparsers(required=True, metavar="ACTION")

    listing = sub.add_parser("list", help="dead-lettered sends, newest first (recipients masked)")
    listing.add_argument("--reason", choices=REASONS)
    listing.add_argument("--limit", type=int, default=100)
    listing.add_argument("--json", action="store_true", help="full entries as JSON")
    listing.set_defaults(handler=_list)

    show = sub.add_parser("show", help="one entry in full (recipient masked)")
    show.add_argument("id", help="the entry id: the send's idempotency key")
    show.set_defaults(handler=_show)

    replay = sub.add_parser(
        "replay", help="send again under the same key (never doubles a sent one)"
    )
    which = replay.add_mutually_exclusive_group(required=True)
    which.add_argument("id", nargs="?", help="one entry")
    which.add_argument("--reason", choices=REASONS, help="every entry of this reason")
    which.add_argument(
        "--all", action="store_true", help="every entry except outcome_unknown (name that reason)"
    )
    replay.set_defaults(handler=_replay)

    purge = sub.add_parser("purge", help="delete entries (the keys stay used)")
    purge.add_argument("--reason", choices=REASONS)
    purge.set_defaults(handler=_purge)

    depth = sub.add_parser("depth", help="entries per reason (JSON)")
    depth.set_defaults(handler=_depth)


def _store() -> Any:
    from tasks.delivery.runtime import current_runtime  # noqa: PLC0415
    from tasks.worker.app import engage_settings  # noqa: PLC0415  (loads the configuration)

    return current_runtime(engage_settings()).dead_letters


def _list(args: argparse.Namespace) -> int:
    entries = _store().entries(reason=args.reason, limit=args.limit)
    if args.json:
        print(json.dumps(entries, indent=2))
        return EXIT_OK
    if not entries:
        print("no dead-lettered sends")
    for e in entries:
        request = e.get("request") or {}
        print(
            f"{e['last_failure_at']}  {e['reason']:<18} {e['key']}  "
            f"message={request.get('message_id')} to={request.get('recipient')}  "
            f"attempts={e['attempts']}  {e['detail']}"
        )
    return EXIT_OK


def _show(args: argparse.Namespace) -> int:
    entry = _store().get(args.id)
    if entry is None:
        print(f"engage-sms: no dead-letter entry {args.id!r}")
        return EXIT_FAILED
    print(json.dumps(entry, indent=2))
    return EXIT_OK


def _replay(args: argparse.Namespace) -> int:
    from tasks.api import replay_dead_letter  # noqa: PLC0415

    if args.id:
        keys = [args.id]
    else:
        keys = _store().keys(reason=args.reason)
        if args.all:
            # Replaying an unknown outcome may send a second SMS: only when asked for by name.
            unknown = set(_store().keys(reason="outcome_unknown"))
            keys = [k for k in keys if k not in unknown]
    results = {key: replay_dead_letter(key) for key in keys}
    print(json.dumps(results, indent=2))
    return EXIT_OK if all(r in ("requeued", "sent") for r in results.values()) else EXIT_FAILED


def _purge(args: argparse.Namespace) -> int:
    print(json.dumps({"purged": _store().purge(reason=args.reason)}))
    return EXIT_OK


def _depth(_: argparse.Namespace) -> int:
    print(json.dumps(_store().depth_by_reason(), indent=2, sort_keys=True))
    return EXIT_OK
