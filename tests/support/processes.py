"""Fresh interpreters and commands: for what a process reads once (configuration, imports)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

#: Generous: two cores are shared by every test and helper process.
TIMEOUT = 90


def run_python(
    code: str, *, env: Mapping[str, str], cwd: Path | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter with exactly ``env``; raises on failure if ``check``."""
    return subprocess.run(
        [sys.executable, "-c", code],
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=check,
    )


def run_module(
    module: str, *args: str, env: Mapping[str, str], check: bool = False
) -> subprocess.CompletedProcess[str]:
    """``python -m module args...`` as a user would run it, configured only by ``env``."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=check,
    )


def celery_command(*args: str, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """``celery args...`` (the console script next to this interpreter)."""
    return subprocess.run(
        [str(Path(sys.executable).with_name("celery")), *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
