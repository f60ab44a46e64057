"""``engage-sms dlq ...``: list, show, replay and purge dead-lettered sends.

Replaying or purging a batch (``--reason``, ``--all``, every entry) asks first: on a terminal it
shows the count and the reasons and waits for ``y``; without one it refuses unless ``--yes`` is
given. ``--dry-run`` shows what would be done and changes nothing. Replaying one entry named by
its key acts at once. Redis not answering ends any of them with ServiceUnavailable.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Callable
from typing import Any, Protocol

from tasks.cli.exit_codes import ExitCode
from tasks.state.dead_letters import DeadLetterStore
from tasks.state.enums import POLICY_ENDS, Reason

#: What ``--reason`` accepts: plain strings, so argparse's errors list them readably.
REASON_NAMES = [reason.value for reason in Reason]
#: Answers to the confirmation prompt that mean yes; anything else (or none) is no.
YES = ("y", "yes")

Action = Callable[[argparse.Namespace, DeadLetterStore], ExitCode]


class Console(Protocol):
    """Where the answer to a question comes from: ``sys.stdin``, or a test's stand-in."""

    def isatty(self) -> bool:
        """True on a terminal: only there is anyone to ask."""
        ...

    def readline(self) -> str:
        """The answer typed ('' at end of input)."""
        ...


def add_dlq_commands(commands: Any) -> None:
    """Register the ``dlq`` command and its subcommands on the CLI's parser."""
    dlq = commands.add_parser("dlq", help="the dead-letter store")
    sub = dlq.add_subparsers(required=True, metavar="ACTION")

    listing = sub.add_parser("list", help="dead-lettered sends, newest first (recipients masked)")
    listing.add_argument("--reason", choices=REASON_NAMES)
    listing.add_argument(
        "--limit", type=whole_number, default=100, metavar="N", help="at most N (default 100)"
    )
    listing.add_argument("--json", action="store_true", help="full entries as JSON")
    listing.set_defaults(handler=_on_store(_list))

    show = sub.add_parser("show", help="one entry in full (recipient masked)")
    show.add_argument("id", metavar="KEY", help="the send's idempotency key")
    show.set_defaults(handler=_on_store(_show))

    replay = sub.add_parser(
        "replay", help="send again under the same key (never doubles a sent one)"
    )
    which = replay.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "id", nargs="?", metavar="KEY", help="one entry, by idempotency key (acts without asking)"
    )
    which.add_argument("--reason", choices=REASON_NAMES, help="every entry of this reason")
    which.add_argument(
        "--all", action="store_true", help="every entry except outcome_unknown (name that reason)"
    )
    _add_safety_flags(replay, "replay", "replayed")
    replay.set_defaults(handler=_on_store(_replay))

    purge = sub.add_parser("purge", help="delete entries (the keys stay used)")
    purge.add_argument("--reason", choices=REASON_NAMES, help="only entries of this reason")
    _add_safety_flags(purge, "purge", "purged")
    purge.set_defaults(handler=_on_store(_purge))

    depth = sub.add_parser("depth", help="entries per reason (JSON)")
    depth.set_defaults(handler=_on_store(_depth))


def whole_number(value: str) -> int:
    """The argparse type of ``--limit``: a whole number >= 1."""
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {value!r}")
    return number


def _add_safety_flags(parser: argparse.ArgumentParser, verb: str, done: str) -> None:
    flags = parser.add_mutually_exclusive_group()
    flags.add_argument(
        "--dry-run", action="store_true", help=f"list what would be {done}; change nothing"
    )
    flags.add_argument(
        "--yes", action="store_true", help=f"{verb} without asking (needed without a terminal)"
    )


def _on_store(action: Action) -> Callable[[argparse.Namespace], ExitCode]:
    """A handler running ``action`` on this process's dead-letter store."""

    def handler(args: argparse.Namespace) -> ExitCode:
        # Imported here: they load the configuration and Celery, which `sandbox` never needs.
        from tasks.core.outages import unavailable_as  # noqa: PLC0415
        from tasks.delivery.runtime import current_runtime  # noqa: PLC0415
        from tasks.worker.app import engage_settings  # noqa: PLC0415

        rt = current_runtime(engage_settings())
        with unavailable_as("redis", rt.settings.redis_url):
            return action(args, rt.dead_letters)

    return handler


def _list(args: argparse.Namespace, store: DeadLetterStore) -> ExitCode:
    entries = store.entries(reason=args.reason, limit=args.limit)
    if args.json:
        print(json.dumps(entries, indent=2))
        return ExitCode.OK
    if not entries:
        print("no dead-lettered sends")
    for entry in entries:
        print(_line(entry))
    return ExitCode.OK


def _no_entry(store: DeadLetterStore, key: str) -> ExitCode:
    """Say there is no entry, and the send's state when it ended otherwise."""
    state = store.state_of(key)
    if state in POLICY_ENDS:
        why = f": the send ended {state}, a final state of the sending policy (never replayed)"
    else:
        why = f" (the send is {state})" if state else ""
    print(f"engage-sms: no dead-letter entry {key!r}{why}", file=sys.stderr)
    return ExitCode.FAILED


def _show(args: argparse.Namespace, store: DeadLetterStore) -> ExitCode:
    entry = store.get(args.id)
    if entry is None:
        return _no_entry(store, args.id)
    print(json.dumps(entry, indent=2))
    return ExitCode.OK


def _replay(args: argparse.Namespace, store: DeadLetterStore) -> ExitCode:
    from tasks.api import replay_dead_letter  # noqa: PLC0415  (loads Celery)

    if args.id:
        if args.dry_run:
            entry = store.get(args.id)
            if entry is None:
                return _no_entry(store, args.id)
            _print_plan("replay", [entry])
            return ExitCode.OK
        keys = [args.id]
    else:
        entries = _batch(store, args.reason, skip_unknown=args.all)
        if args.dry_run:
            _print_plan("replay", entries)
            return ExitCode.OK
        refused = _refusal(args, "replay", "replayed", entries)
        if refused is not None:
            return refused
        keys = [entry["key"] for entry in entries]
    results: dict[str, str] = {}
    try:
        for key in keys:
            results[key] = replay_dead_letter(key)
    except BaseException:
        if results:  # Redis or the broker went away midway: these were replayed all the same
            print(json.dumps(results, indent=2))
        raise
    print(json.dumps(results, indent=2))
    return (
        ExitCode.OK if all(r in ("requeued", "sent") for r in results.values()) else ExitCode.FAILED
    )


def _purge(args: argparse.Namespace, store: DeadLetterStore) -> ExitCode:
    entries = _batch(store, args.reason, skip_unknown=False)
    if args.dry_run:
        _print_plan("purge", entries)
        return ExitCode.OK
    refused = _refusal(args, "purge", "purged", entries)
    if refused is not None:
        return refused
    # The entries shown, not whatever arrived while the operator read the question.
    print(json.dumps({"purged": store.remove([entry["key"] for entry in entries])}))
    return ExitCode.OK


def _depth(_: argparse.Namespace, store: DeadLetterStore) -> ExitCode:
    print(json.dumps(store.depth_by_reason(), indent=2, sort_keys=True))
    over = store.over_bound_count()
    if over:
        # Not in the listing, yet dead-lettered and replayable by key (README: Operating it).
        print(
            f"engage-sms: {over} more over ENGAGE_DLQ_MAX_ENTRIES, replayable by key "
            "(see the worker log)",
            file=sys.stderr,
        )
    return ExitCode.OK


def _batch(
    store: DeadLetterStore, reason: str | None, *, skip_unknown: bool
) -> list[dict[str, Any]]:
    entries = store.entries(reason=reason, limit=sys.maxsize)  # every one, not a page
    if skip_unknown:
        # Replaying an unknown outcome may send a second SMS: only when asked for by name.
        entries = [entry for entry in entries if entry["reason"] != Reason.OUTCOME_UNKNOWN]
    return entries


def _refusal(
    args: argparse.Namespace, verb: str, done: str, entries: list[dict[str, Any]]
) -> ExitCode | None:
    """None when the change may go ahead; else the exit code, nothing having changed."""
    if args.yes or not entries:
        return None
    stdin: Console | None = args.stdin
    if stdin is None or not stdin.isatty():
        print(
            f"engage-sms: stdin is not a terminal, so not asking: pass --yes to {verb} "
            f"{_counted(entries)}, or --dry-run to list them",
            file=sys.stderr,
        )
        return ExitCode.USAGE
    print(f"{verb.capitalize()} {_counted(entries)}? [y/N] ", end="", file=sys.stderr, flush=True)
    try:
        answer = stdin.readline()
    except KeyboardInterrupt:
        answer = ""
    if answer.strip().lower() in YES:
        return None
    print(f"engage-sms: nothing {done}", file=sys.stderr)
    return ExitCode.USAGE


def _counted(entries: list[dict[str, Any]]) -> str:
    """``41 dead-lettered sends (outcome_unknown: 28, unknown_recipient: 13)``."""
    noun = "send" if len(entries) == 1 else "sends"
    counts = sorted(Counter(e["reason"] for e in entries).items(), key=lambda rn: (-rn[1], rn[0]))
    by_reason = ", ".join(f"{reason}: {n}" for reason, n in counts)
    return f"{len(entries)} dead-lettered {noun}" + (f" ({by_reason})" if by_reason else "")


def _print_plan(verb: str, entries: list[dict[str, Any]]) -> None:
    print(f"dry run: would {verb} {_counted(entries)}; nothing changed")
    for entry in entries:
        print(_line(entry))


def _line(entry: dict[str, Any]) -> str:
    """One entry as ``dlq list`` prints it: the recipient masked."""
    request = entry.get("request") or {}
    return (
        f"{entry['last_failure_at']}  {entry['reason']:<18} {entry['key']}  "
        f"message={request.get('message_id')} to={request.get('recipient')}  "
        f"attempts={entry['attempts']}  {entry['detail']}"
    )
