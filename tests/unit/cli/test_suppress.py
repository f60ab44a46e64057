"""engage-sms suppress and tasks.suppress: the opt-out list from the command line and Python."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import tasks
from tasks.cli.main import main
from tasks.core.errors import InvalidSendRequest
from tasks.core.request import Identifier
from tasks.delivery.runtime import Runtime

MOBILE = Identifier("MOBILE", "48505606707")


def test_add_then_list_shows_masked_entries_and_remove_takes_them_off(
    runtime: Runtime, capsys: pytest.CaptureFixture[str]
) -> None:
    """add reads any number format; list masks; remove needs the value again."""
    assert main(["suppress", "add", "+48 505 606 707", "ann@example.com"]) == 0
    assert json.loads(capsys.readouterr().out) == {"added": 2, "already_listed": 0}
    assert runtime.suppressions.contains(MOBILE)
    assert main(["suppress", "list"]) == 0
    out = capsys.readouterr().out
    assert "MOBILE:48*******07" in out
    assert "505606707" not in out
    assert "2 opted out" in out
    assert main(["suppress", "remove", "0048505606707"]) == 0
    assert not runtime.suppressions.contains(MOBILE)
    assert main(["suppress", "remove", "0048505606707"]) == 1


def test_a_bad_value_exits_2_and_adds_nothing(
    runtime: Runtime, capsys: pytest.CaptureFixture[str]
) -> None:
    """Validation names the field; nothing is stored."""
    assert main(["suppress", "add", "+48 505 606 707", "12"]) == 2
    assert "mobile" in capsys.readouterr().err
    assert runtime.suppressions.count() == 0


def test_import_adds_every_line_or_nothing(
    runtime: Runtime, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Comments and blank lines are skipped; one bad line stops the import, named by number."""
    good = tmp_path / "optouts.txt"
    good.write_text("# exported 2026-12-01\n+48505606707\n\nann@example.com  # web form\n")
    assert main(["suppress", "import", str(good)]) == 0
    assert json.loads(capsys.readouterr().out) == {"read": 2, "added": 2}
    bad = tmp_path / "bad.txt"
    bad.write_text("+48505606708\nnot-a-number\n")
    assert main(["suppress", "import", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "line 2" in err
    assert "not-a-number" not in err
    assert not runtime.suppressions.contains(Identifier("MOBILE", "48505606708"))


def test_python_suppress_and_unsuppress(runtime: Runtime) -> None:
    """tasks.suppress takes the send's identifier arguments."""
    assert tasks.suppress(mobile="+48 505 606 707")
    assert not tasks.suppress(mobile="0048505606707")
    assert runtime.suppressions.contains(MOBILE)
    assert tasks.unsuppress(mobile="48505606707")
    with pytest.raises(InvalidSendRequest):
        tasks.suppress(mobile="+48 505", email="a@example.com")
