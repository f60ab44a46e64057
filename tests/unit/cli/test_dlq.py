"""``engage-sms dlq``: bounds checked by the parser, batch changes asked for, dry runs, outages."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator

import pytest

from tasks.cli import ExitCode, main
from tasks.core.request import build_send_request
from tasks.delivery.runtime import Runtime
from tasks.state.enums import Reason
from tests.support.broker import Broker
from tests.support.environments import make_settings
from tests.support.runtime import installed

#: Two of one reason and one of another, listed before the outcome_unknown entry in questions.
REPLAYABLE = {
    "order-1": Reason.UNKNOWN_RECIPIENT,
    "order-2": Reason.UNKNOWN_RECIPIENT,
    "order-3": Reason.REJECTED,
}
ASKED = "3 dead-lettered sends (unknown_recipient: 2, rejected: 1)"


class Terminal:
    """Standard input that is a terminal, with the operator's typed answers.

    ``meanwhile`` runs while the question waits for its answer.
    """

    def __init__(self, typed: str, meanwhile: Callable[[], object] = lambda: None) -> None:
        self._typed = io.StringIO(typed)
        self._meanwhile = meanwhile

    def isatty(self) -> bool:
        """A terminal, so the command may ask."""
        return True

    def readline(self) -> str:
        """The next line typed."""
        self._meanwhile()
        return self._typed.readline()


def dead_letter(rt: Runtime, key: str, reason: Reason) -> None:
    """Enqueue-record a send under ``key`` and dead-letter it for ``reason``."""
    rt.ledger.claim(key, build_send_request(23541, mobile="+48505606707"), [f"{key}-0", key])
    rt.dead_letters.add(key, reason=reason, detail="d", error=None, task_ids=[f"{key}-0", key])


@pytest.fixture
def entries(runtime: Runtime) -> Runtime:
    """The runtime with REPLAYABLE dead-lettered, and one outcome_unknown (never in --all)."""
    for key, reason in REPLAYABLE.items():
        dead_letter(runtime, key, reason)
    dead_letter(runtime, "maybe-sent", Reason.OUTCOME_UNKNOWN)
    return runtime


@pytest.fixture
def redis_down() -> Iterator[Runtime]:
    """This process's runtime on a Redis that refuses connections (its URL has a password)."""
    settings = make_settings(REDIS_URL="redis://:s3cret@127.0.0.1:1/0")
    with installed(Runtime.build(settings)) as rt:
        yield rt


def replayed(broker: Broker) -> set[str]:
    """Keys published so far."""
    return {key for _, key, _ in broker.published}


@pytest.mark.parametrize("limit", ["0", "-1", "ten", "1.5"])
def test_limit_below_one_or_not_whole_is_a_parse_error(
    limit: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """dlq list --limit takes whole numbers >= 1; anything else is refused before any Redis call."""
    with pytest.raises(SystemExit) as caught:
        main(["dlq", "list", "--limit", limit])
    assert caught.value.code == ExitCode.USAGE
    err = capsys.readouterr().err
    assert f"argument --limit: must be a whole number >= 1, got '{limit}'" in err


def test_limit_shows_at_most_that_many(
    entries: Runtime, capsys: pytest.CaptureFixture[str]
) -> None:
    """dlq list --limit 2 prints two of the four entries."""
    assert main(["dlq", "list", "--limit", "2"]) == ExitCode.OK
    assert len(capsys.readouterr().out.splitlines()) == 2


def test_replay_dry_run_lists_count_reasons_and_masked_recipients(
    entries: Runtime, broker: Broker, capsys: pytest.CaptureFixture[str]
) -> None:
    """replay --all --dry-run prints what it would replay, recipients masked; replays nothing."""
    assert main(["dlq", "replay", "--all", "--dry-run"], stdin=io.StringIO()) == ExitCode.OK
    out = capsys.readouterr().out
    header, *lines = out.splitlines()
    assert header == f"dry run: would replay {ASKED}; nothing changed"
    assert sorted(line.split()[2] for line in lines) == sorted(REPLAYABLE)
    assert "48*******07" in out
    assert "48505606707" not in out
    assert broker.published == []
    assert len(entries.dead_letters.keys()) == 4


def test_purge_dry_run_changes_nothing(
    entries: Runtime, capsys: pytest.CaptureFixture[str]
) -> None:
    """purge --dry-run prints the count by reason and deletes nothing."""
    assert main(["dlq", "purge", "--dry-run"], stdin=io.StringIO()) == ExitCode.OK
    assert capsys.readouterr().out.startswith(
        "dry run: would purge 4 dead-lettered sends "
        "(unknown_recipient: 2, outcome_unknown: 1, rejected: 1); nothing changed\n"
    )
    assert len(entries.dead_letters.keys()) == 4


@pytest.mark.parametrize(
    "argv", [["replay", "--all"], ["replay", "--reason", "unknown_recipient"], ["purge"]]
)
def test_without_a_terminal_a_batch_change_needs_yes(
    entries: Runtime, broker: Broker, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    """Stdin not a terminal (even with "y" piped in): exit 2, one line naming --yes, --dry-run."""
    assert main(["dlq", *argv], stdin=io.StringIO("y\n")) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert "pass --yes" in err
    assert "--dry-run" in err
    assert broker.published == []
    assert len(entries.dead_letters.keys()) == 4


def test_yes_replays_without_asking(
    entries: Runtime, broker: Broker, capsys: pytest.CaptureFixture[str]
) -> None:
    """replay --all --yes replays every entry but outcome_unknown, with no question asked."""
    assert main(["dlq", "replay", "--all", "--yes"], stdin=io.StringIO()) == ExitCode.OK
    captured = capsys.readouterr()
    assert json.loads(captured.out) == dict.fromkeys(REPLAYABLE, "requeued")
    assert captured.err == ""
    assert replayed(broker) == set(REPLAYABLE)


def test_yes_purges_without_asking(entries: Runtime, capsys: pytest.CaptureFixture[str]) -> None:
    """purge --reason rejected --yes deletes that reason's entries only."""
    assert main(["dlq", "purge", "--reason", "rejected", "--yes"]) == ExitCode.OK
    assert json.loads(capsys.readouterr().out) == {"purged": 1}
    assert sorted(entries.dead_letters.keys()) == ["maybe-sent", "order-1", "order-2"]


def test_on_a_terminal_replay_asks_with_the_count_and_reasons(
    entries: Runtime, broker: Broker, capsys: pytest.CaptureFixture[str]
) -> None:
    """The question names how many and why; "y" replays them."""
    assert main(["dlq", "replay", "--all"], stdin=Terminal("y\n")) == ExitCode.OK
    assert capsys.readouterr().err == f"Replay {ASKED}? [y/N] "
    assert replayed(broker) == set(REPLAYABLE)


@pytest.mark.parametrize("answer", ["", "\n", "n\n", "no\n", "yess\n"])
def test_on_a_terminal_anything_but_yes_changes_nothing(
    entries: Runtime, broker: Broker, capsys: pytest.CaptureFixture[str], answer: str
) -> None:
    """No, an empty line or end of input: exit 2, nothing replayed."""
    assert main(["dlq", "replay", "--all"], stdin=Terminal(answer)) == ExitCode.USAGE
    assert capsys.readouterr().err.endswith("engage-sms: nothing replayed\n")
    assert broker.published == []
    assert len(entries.dead_letters.keys()) == 4


def test_purge_deletes_only_the_entries_it_asked_about(
    entries: Runtime, capsys: pytest.CaptureFixture[str]
) -> None:
    """An entry dead-lettered while the question waits is not purged by the answer."""
    operator = Terminal("y\n", lambda: dead_letter(entries, "arrived-meanwhile", Reason.REJECTED))
    assert main(["dlq", "purge"], stdin=operator) == ExitCode.OK
    assert json.loads(capsys.readouterr().out) == {"purged": 4}
    assert entries.dead_letters.keys() == ["arrived-meanwhile"]


def test_one_named_entry_replays_without_asking(
    entries: Runtime, broker: Broker, capsys: pytest.CaptureFixture[str]
) -> None:
    """dlq replay KEY names exactly one entry: it acts at once, terminal or not."""
    assert main(["dlq", "replay", "order-1"], stdin=io.StringIO()) == ExitCode.OK
    assert json.loads(capsys.readouterr().out) == {"order-1": "requeued"}
    assert replayed(broker) == {"order-1"}


@pytest.mark.parametrize(
    "argv",
    [
        ["list"],
        ["depth"],
        ["show", "order-1"],
        ["replay", "order-1"],
        ["replay", "--all", "--yes"],
        ["purge", "--dry-run"],
    ],
)
def test_with_redis_down_dlq_exits_4_with_one_line(
    redis_down: Runtime, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    """Each dlq command names Redis and its masked URL in one line and exits 4."""
    assert main(["dlq", *argv], stdin=io.StringIO()) == ExitCode.UNAVAILABLE
    captured = capsys.readouterr()
    assert captured.err == (
        "engage-sms: Redis unavailable at redis://:***@127.0.0.1:1/0: Connection refused\n"
    )
    assert captured.out == ""
