"""``engage-sms demo --sentinel`` (``make demo-sentinel``): the demo on a Sentinel set."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.process

#: The demo starts a set, the sandbox, a worker and Flower: a loaded machine needs minutes.
DEMO_TIMEOUT = 300


def test_the_demo_runs_on_a_sentinel_set_of_its_own(tmp_path: Path) -> None:
    """The SMS is sent once and the unknown number dead-lettered, the worker on sentinel://."""
    demo = str(Path(sys.executable).with_name("engage-sms"))
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("ENGAGE_", "CELERY_", "REDIS_URL"))
    }
    result = subprocess.run(
        [demo, "demo", "--sentinel"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert "a throwaway Sentinel set of the demo's own" in result.stdout
    assert "demo OK: sent once, unknown recipient dead-lettered" in result.stdout
    assert result.stdout.count("message/sendSingle") == 1
    worker_log = (tmp_path / ".run" / "demo-worker.log").read_text()
    assert "Connected to tasks.worker.transport:SentinelTransport://" in worker_log
