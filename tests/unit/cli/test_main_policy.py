"""``engage-sms send`` with the sending policy: deadlines, contact creation, policy ends."""

from __future__ import annotations

import json

import pytest

from tasks.api import delivery_status, suppress
from tasks.cli import ExitCode, main
from tasks.delivery.runtime import Runtime
from tests.support.broker import Broker

SEND = ["send", "--message-id", "23541", "--mobile", "+48505606707"]


def test_expires_in_and_create_contact_reach_the_record(
    runtime: Runtime, broker: Broker, capsys: pytest.CaptureFixture[str]
) -> None:
    """--expires-in sets the deadline, --create-contact the record's flag."""
    assert main([*SEND, "--idempotency-key", "k1", "--expires-in", "30", "--create-contact"]) == 0
    assert json.loads(capsys.readouterr().out)["state"] == "queued"
    assert "expires_at" in delivery_status("k1")
    assert runtime.ledger.record("k1")["create_contact"] == "1"


@pytest.mark.parametrize(
    "args",
    [
        ["--send-by", "2030-01-01T09:00:00"],
        ["--send-by", "tomorrow"],
        ["--expires-in", "5", "--send-by", "2030-01-01T09:00:00+01:00"],
    ],
)
def test_a_bad_deadline_is_a_usage_error(
    args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """No offset, no date, or both deadlines: exit 2 before anything is enqueued."""
    with pytest.raises(SystemExit) as caught:
        main([*SEND, *args])
    assert caught.value.code == ExitCode.USAGE
    assert "--send-by" in capsys.readouterr().err


def test_a_non_positive_expires_in_names_the_argument(
    runtime: Runtime, broker: Broker, capsys: pytest.CaptureFixture[str]
) -> None:
    """--expires-in 0 reaches the API's validation: exit 2, nothing enqueued."""
    assert main([*SEND, "--expires-in", "0"]) == ExitCode.USAGE
    assert "expires_in" in capsys.readouterr().err
    assert broker.messages == []


def test_send_wait_exits_1_for_a_policy_end(
    runtime: Runtime, broker: Broker, capsys: pytest.CaptureFixture[str]
) -> None:
    """An opted-out recipient: --wait returns at once with outcome suppressed and exit 1."""
    suppress(mobile="+48505606707")
    assert main([*SEND, "--wait", "5"]) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out)["state"] == "suppressed"
    assert "not sent: suppressed: the recipient opted out" in captured.err
