"""Nothing exposed by default: Flower never starts without a login, metrics listen on 127.0.0.1."""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path

import pytest

from tasks.cli.local_stack import ManagedProcess
from tests.support.environments import OFFLINE_ENV, bare_env
from tests.support.processes import listening_addresses, run_module

pytestmark = pytest.mark.process

#: A password that must never be printed.
PASSWORD = "s3cret-Flower-pw"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def offline_env(**env: str) -> dict[str, str]:
    """A configuration that connects nowhere, with no FLOWER_* variable but ``env``."""
    kept = {k: v for k, v in bare_env(**OFFLINE_ENV).items() if not k.startswith("FLOWER_")}
    return {**kept, **env}


def served(port: int) -> bool:
    """Something accepts connections on 127.0.0.1:``port``."""
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize(
    "login",
    [None, "", "admin", f":{PASSWORD}", f"admin:{PASSWORD},guest"],
    ids=["unset", "empty", "no-password", "no-user", "one-of-two-malformed"],
)
def test_engage_sms_flower_refuses_without_a_valid_login(login: str | None) -> None:
    """engage-sms flower: one line naming FLOWER_BASIC_AUTH, exit 2, no password shown, no port."""
    port = free_port()
    env = offline_env() if login is None else offline_env(FLOWER_BASIC_AUTH=login)
    result = run_module("tasks.cli", "flower", "--port", str(port), env=env)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("engage-sms: FLOWER_BASIC_AUTH ")
    assert PASSWORD not in result.stdout + result.stderr
    assert not served(port)


@pytest.mark.parametrize("login", [None, "admin"], ids=["unset", "no-password"])
def test_plain_celery_flower_refuses_without_a_login(login: str | None) -> None:
    """Even celery -A tasks flower without a valid login exits at start with one line."""
    port = free_port()
    env = offline_env() if login is None else offline_env(FLOWER_BASIC_AUTH=login)
    result = run_module("celery", "-A", "tasks", "flower", f"--port={port}", env=env)
    assert result.returncode != 0
    assert "engage-sms: Flower needs a login: FLOWER_BASIC_AUTH (or --basic-auth)" in result.stderr
    assert "Traceback" not in result.stderr
    assert not served(port)


def test_metrics_sidecar_listens_on_loopback_by_default(tmp_path: Path) -> None:
    """engage-sms metrics without --host or ENGAGE_METRICS_ADDRESS listens on 127.0.0.1 only."""
    port = free_port()
    sidecar = ManagedProcess(
        [sys.executable, "-m", "tasks.cli", "metrics", "--port", str(port)],
        env=offline_env(),
        log_path=tmp_path / "metrics.log",
    )
    sidecar.start()
    try:
        sidecar.wait_for_log("metrics on", 60.0)
        deadline = time.monotonic() + 10
        while not listening_addresses(port) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert listening_addresses(port) == {"127.0.0.1"}
    finally:
        sidecar.stop()
