"""``engage-sms`` run as a user runs it, with Redis or the broker down: one line, exit 4."""

from __future__ import annotations

import subprocess

import pytest

from tasks.cli import ExitCode
from tests.support.environments import REAL_REDIS_URL, bare_env
from tests.support.processes import run_module
from tests.support.real_redis import connected, delete_prefix, unique_prefix

pytestmark = pytest.mark.integration

#: Nothing listens on port 1: connecting is refused at once. The password must never show.
DEAD_URL = "redis://:s3cret@127.0.0.1:1/0"
SHOWN_URL = "redis://:***@127.0.0.1:1/0"
SEND = ("send", "--message-id", "23541", "--mobile", "+48505606707", "--idempotency-key", "k-1")


def engage_sms(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``engage-sms args...`` configured only by ``env`` (no Engage settings: enqueue only)."""
    return run_module("tasks.cli", *args, env=bare_env(**env))


@pytest.mark.parametrize(
    "argv",
    [
        SEND,
        ("status", "k-1"),
        ("dlq", "list"),
        ("dlq", "depth"),
        ("dlq", "replay", "k-1"),
        ("dlq", "replay", "--all", "--yes"),
        ("dlq", "purge", "--yes"),
    ],
    ids=lambda argv: " ".join(argv[:2]) + (" (batch)" if "--yes" in argv else ""),
)
def test_with_redis_down_a_command_prints_one_line_and_exits_4(argv: tuple[str, ...]) -> None:
    """Redis refusing connections: one stderr line naming it (password masked), no traceback."""
    result = engage_sms(*argv, CELERY_BROKER_URL=DEAD_URL)  # REDIS_URL defaults to the broker
    assert result.returncode == ExitCode.UNAVAILABLE
    assert result.stderr == f"engage-sms: Redis unavailable at {SHOWN_URL}: Connection refused\n"
    assert "s3cret" not in result.stdout


def test_with_the_broker_down_send_exits_4_and_leaves_no_claim() -> None:
    """Redis up, the broker down: send names the broker, exits 4, and leaves no key in Redis."""
    prefix = unique_prefix("broker-down")
    with connected(REAL_REDIS_URL) as client:
        try:
            env = {"REDIS_URL": REAL_REDIS_URL, "ENGAGE_KEY_PREFIX": prefix}
            result = engage_sms(*SEND, CELERY_BROKER_URL=DEAD_URL, **env)
            assert result.returncode == ExitCode.UNAVAILABLE
            assert result.stderr == (
                f"engage-sms: broker unavailable at {SHOWN_URL}: Connection refused\n"
            )
            assert list(client.scan_iter(match=f"{prefix}:*")) == []
        finally:
            delete_prefix(client, prefix)
