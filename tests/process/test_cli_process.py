"""The commands as a user starts them: a configuration error is one line, never a traceback."""

from __future__ import annotations

import pytest

from tasks.cli import ExitCode
from tests.support.environments import NOWHERE_ENGAGE_URL, bare_env
from tests.support.processes import run_module

pytestmark = pytest.mark.process


def test_cli_names_a_missing_setting() -> None:
    """engage-sms send with half the Engage settings names the missing one in one line, exit 2."""
    result = run_module(
        *("tasks.cli", "send", "--message-id", "1", "--mobile", "+48505606707"),
        env=bare_env(ENGAGE_BASE_URL=NOWHERE_ENGAGE_URL),
    )
    assert result.returncode == ExitCode.USAGE
    assert result.stderr.strip() == "engage-sms: configuration error: ENGAGE_USERNAME: is not set"


def test_worker_refuses_to_start_without_engage_settings() -> None:
    """A worker calls Engage: without ENGAGE_BASE_URL it stops at start with one line."""
    result = run_module("celery", "-A", "tasks", "worker", env=bare_env())
    assert result.returncode != 0
    assert "configuration error: ENGAGE_BASE_URL: is not set" in result.stderr
    assert "Traceback" not in result.stderr


def test_worker_names_a_malformed_setting_without_a_traceback() -> None:
    """celery -A tasks worker with a bad timeout stops with one clear line."""
    env = bare_env(
        ENGAGE_BASE_URL=NOWHERE_ENGAGE_URL,
        ENGAGE_USERNAME="u",
        ENGAGE_PASSWORD="p",
        ENGAGE_READ_TIMEOUT="soon",
    )
    result = run_module("celery", "-A", "tasks", "worker", env=env)
    assert result.returncode != 0
    assert "configuration error: ENGAGE_READ_TIMEOUT: must be a number, got 'soon'" in result.stderr
    assert "Traceback" not in result.stderr
