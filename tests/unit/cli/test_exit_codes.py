"""One ExitCode enum: the numbers every command exits with, and the two texts made from it."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from tasks.cli import ExitCode, main
from tasks.cli.exit_codes import help_epilog, markdown_table
from tasks.delivery.runtime import Runtime
from tests.support.broker import Broker

ROOT = Path(__file__).resolve().parents[3]


def test_the_numbers_stay_what_scripts_test_for() -> None:
    """0 done, 1 failed, 2 usage, 3 pending, 4 unavailable: callers' scripts compare numbers."""
    assert {code.name: code.value for code in ExitCode} == {
        "OK": 0,
        "FAILED": 1,
        "USAGE": 2,
        "PENDING": 3,
        "UNAVAILABLE": 4,
    }


def test_each_code_has_a_one_line_meaning() -> None:
    """Every member carries one line of text, which --help and the README show."""
    for code in ExitCode:
        assert code.meaning.strip()
        assert "\n" not in code.meaning


def test_readme_table_is_the_one_made_from_the_enum() -> None:
    """The README's exit-code table is markdown_table() exactly (regenerate it from there)."""
    # The table sits in a list item: compare its lines without their indent.
    readme = "\n".join(line.strip() for line in (ROOT / "README.md").read_text().splitlines())
    assert markdown_table() in readme, "README's exit-code table differs from:\n" + markdown_table()


def test_help_ends_with_every_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    """``engage-sms --help`` ends with the epilog made from the enum, one entry per code."""
    with pytest.raises(SystemExit) as caught:
        main(["--help"])
    assert caught.value.code == 0
    shown = capsys.readouterr().out
    assert shown.endswith(help_epilog())
    for code in ExitCode:
        assert f"\n  {code.value}  " in help_epilog()


def test_no_cli_module_defines_exit_numbers_of_its_own() -> None:
    """No module of tasks/cli but exit_codes names an EXIT_* constant."""
    for path in sorted((ROOT / "tasks" / "cli").glob("*.py")):
        if path.name == "exit_codes.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                assert not node.id.startswith("EXIT_"), f"{path.name} defines {node.id}"


def test_send_wait_that_runs_out_exits_3(
    runtime: Runtime, broker: Broker, capsys: pytest.CaptureFixture[str]
) -> None:
    """``send --wait 0`` with no worker: the send is still queued, exit 3 and one line."""
    code = main(["send", "--message-id", "23541", "--mobile", "+48505606707", "--wait", "0"])
    out, err = capsys.readouterr()
    assert code == 3
    assert json.loads(out)["state"] == "queued"
    assert err.startswith("engage-sms: still queued after 0 s")


def test_status_of_an_unknown_key_exits_1(
    runtime: Runtime, capsys: pytest.CaptureFixture[str]
) -> None:
    """``status`` of a key never used prints state unknown and exits 1."""
    assert main(["status", "never-used"]) == 1
    assert json.loads(capsys.readouterr().out)["state"] == "unknown"


def test_flower_without_a_login_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``flower`` refuses to start without FLOWER_BASIC_AUTH: one line, exit 2."""
    monkeypatch.delenv("FLOWER_BASIC_AUTH", raising=False)
    assert main(["flower"]) == 2
    assert "FLOWER_BASIC_AUTH" in capsys.readouterr().err
