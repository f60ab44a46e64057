"""Start and stop local processes for the demo, integration tests and benchmarks.

Celery workers and Flower, each as a real subprocess (Redis: :mod:`tasks.cli.redis_server`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import redis

from tasks.core.send_options import DEFAULT_DEPLOYMENT, all_queues


def redis_answers(url: str) -> bool:
    """True when a Redis server answers PING at ``url``."""
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


class ManagedProcess:
    """A subprocess with its output in a log file, started and stopped on request."""

    def __init__(
        self, argv: list[str], *, env: dict[str, str], log_path: Path, cwd: Path | None = None
    ) -> None:
        self.argv = argv
        self.env = env
        self.log_path = log_path
        self.cwd = cwd
        self._log: IO[bytes] | None = None
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ManagedProcess:
        """Start the process in its own session (so a kill takes its children too)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(  # noqa: S603  (argv built by this module)
            self.argv,
            env=self.env,
            cwd=self.cwd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def log_text(self) -> str:
        """Everything the process wrote so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for_log(self, marker: str, timeout: float, *, offset: int = 0) -> None:
        """Wait until ``marker`` appears in the log after ``offset`` characters."""
        deadline = time.monotonic() + timeout
        while marker not in self.log_text()[offset:]:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"{self.argv[2:5]} exited early:\n{self.log_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {marker!r} within {timeout} s:\n{self.log_text()[-2000:]}")
            time.sleep(0.1)

    def stop(self, timeout: float = 15.0) -> None:
        """Stop gracefully (SIGTERM to the group), then SIGKILL if it lingers."""
        if self.process is not None and self.process.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.process.wait()
        self._close()

    def kill(self) -> None:
        """SIGKILL the whole process group at once, as a crash would."""
        if self.process is not None and self.process.poll() is None:
            self._signal(signal.SIGKILL)
            self.process.wait()
        self._close()

    def _signal(self, sig: signal.Signals) -> None:
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)

    def _close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


def celery_command(subcommand: str, *options: str) -> list[str]:
    """``celery -A tasks <subcommand> <options>`` run by this interpreter."""
    return [sys.executable, "-m", "celery", "-A", "tasks", subcommand, *options]


def celery_worker(
    env: dict[str, str],
    log_path: Path,
    *,
    name: str,
    pool: str = "threads",
    concurrency: int = 16,
    queues: str | None = None,
) -> ManagedProcess:
    """A real ``celery -A tasks worker`` process (not yet started), consuming every lane.

    ``queues`` is its ``-Q``: by default every lane's queue of the deployment ``env`` names
    (``ENGAGE_KEY_PREFIX``), highest first; ``""`` for no ``-Q`` at all.
    """
    if queues is None:
        queues = all_queues(env.get("ENGAGE_KEY_PREFIX") or DEFAULT_DEPLOYMENT)
    argv = celery_command(
        "worker",
        *("--loglevel", "INFO", "--pool", pool, "--concurrency", str(concurrency)),
        *("-n", f"{name}@%h", "--without-gossip", "--without-mingle"),
    )
    if queues:
        argv += ["-Q", queues]
    return ManagedProcess(argv, env=env, log_path=log_path)


def start_worker(worker: ManagedProcess, timeout: float = 60.0) -> ManagedProcess:
    """Start a worker and wait until it consumes."""
    offset = len(worker.log_text())
    worker.start()
    worker.wait_for_log(" ready.", timeout, offset=offset)
    return worker
