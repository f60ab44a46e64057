"""``engage-sms cancel``: keys at once, lanes and schedules as asked-for batches."""

from __future__ import annotations

import io
import json

import pytest

from tasks.cli import ExitCode, main
from tasks.core.request import build_send_request
from tasks.core.send_options import Priority
from tasks.delivery.runtime import Runtime


def queue(rt: Runtime, key: str, lane: Priority = Priority.NORMAL) -> None:
    """A queued send under ``key`` in ``lane``."""
    request = build_send_request(23541, recipient_id=len(key) + 100)
    rt.ledger.claim(key, request, [f"{key}-0", key], priority=lane)


class NoTerminal(io.StringIO):
    """Standard input that is no terminal: nobody to ask."""

    def isatty(self) -> bool:
        """Not a terminal."""
        return False


def test_a_key_is_cancelled_at_once(runtime: Runtime, capsys: pytest.CaptureFixture[str]) -> None:
    """cancel KEY stops it and prints the outcome; a second cancel says it was already."""
    queue(runtime, "order-1")
    assert main(["cancel", "order-1"]) == ExitCode.OK
    assert json.loads(capsys.readouterr().out) == {"order-1": "cancelled_now"}
    assert runtime.ledger.state("order-1") == "cancelled"
    assert main(["cancel", "order-1"]) == ExitCode.OK
    assert json.loads(capsys.readouterr().out) == {"order-1": "cancelled"}


def test_a_send_being_sent_is_reported_not_stopped(
    runtime: Runtime, capsys: pytest.CaptureFixture[str]
) -> None:
    """A held lease cannot be taken back: exit 1, state sending."""
    queue(runtime, "busy")
    runtime.ledger.begin_send("busy", "busy:0", 33457)
    assert main(["cancel", "busy"]) == ExitCode.FAILED
    assert json.loads(capsys.readouterr().out) == {"busy": "sending"}


def test_a_lane_is_a_batch_that_needs_yes_without_a_terminal(
    runtime: Runtime, capsys: pytest.CaptureFixture[str]
) -> None:
    """--lane bulk asks; refused without a terminal, done with --yes, others untouched."""
    queue(runtime, "b1", Priority.BULK)
    queue(runtime, "b2", Priority.BULK)
    queue(runtime, "n1")
    assert main(["cancel", "--lane", "bulk"], stdin=NoTerminal()) == ExitCode.USAGE
    assert runtime.ledger.state("b1") == "queued"
    assert main(["cancel", "--lane", "bulk", "--dry-run"]) == ExitCode.OK
    assert capsys.readouterr().out.splitlines()[1:] == ["b1", "b2"]
    assert main(["cancel", "--lane", "bulk", "--yes"]) == ExitCode.OK
    assert json.loads(capsys.readouterr().out) == {"b1": "cancelled_now", "b2": "cancelled_now"}
    assert runtime.ledger.state("n1") == "queued"


def test_a_schedule_cancels_its_runs_only(runtime: Runtime) -> None:
    """--schedule NAME takes the keys of that schedule's runs."""
    queue(runtime, "beat:daily:20240501T090000Z:abc")
    queue(runtime, "beat:weekly:20240501T090000Z:abc")
    assert main(["cancel", "--schedule", "daily", "--yes"]) == ExitCode.OK
    assert runtime.ledger.state("beat:daily:20240501T090000Z:abc") == "cancelled"
    assert runtime.ledger.state("beat:weekly:20240501T090000Z:abc") == "queued"
