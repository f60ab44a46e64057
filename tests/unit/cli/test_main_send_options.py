"""``engage-sms send``: option bounds checked by the parser, and help that says what happens."""

from __future__ import annotations

import pytest

from tasks.cli import ExitCode, main

SEND = ["send", "--message-id", "1", "--mobile", "+48505606707"]


@pytest.mark.parametrize("seconds", ["-5", "-0.1", "nan", "inf", "soon"])
def test_wait_must_be_a_finite_number_of_seconds_from_zero(
    seconds: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A negative, infinite or non-numeric --wait is a usage error before anything is sent."""
    with pytest.raises(SystemExit) as caught:
        main([*SEND, "--wait", seconds])
    assert caught.value.code == ExitCode.USAGE
    assert "--wait" in capsys.readouterr().err


def test_help_says_a_send_without_a_key_is_a_new_send_each_time(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The key's default is a random auto:<uuid>, so the same command twice sends twice."""
    with pytest.raises(SystemExit):
        main(["send", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "auto:<uuid>" in help_text
    assert "running the command twice sends twice" in help_text
    assert "derived" not in help_text
