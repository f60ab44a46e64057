"""A Redis server of its own for outage drills: keeps its data across a restart (append-only file).

``make chaos`` and the recovery tests stop it mid-run and start it again on the same port, as a
Redis restart or failover would, without touching the Redis everything else on the machine uses.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis

_AOF = ("--appendonly", "yes", "--appendfsync", "always")


class RedisServer:
    """``redis-server`` on a free loopback port, data in ``data_dir`` (AOF, fsync always, unless not
    ``persistent``: then it keeps nothing on disk)."""

    def __init__(self, data_dir: Path, port: int | None = None, *, persistent: bool = True) -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            raise RuntimeError("redis-server is not installed")
        data_dir.mkdir(parents=True, exist_ok=True)
        self.port = port or _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._argv = [
            executable,
            *("--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(data_dir)),
            *("--save", "", "--maxmemory-policy", "noeviction"),
            *(_AOF if persistent else ("--appendonly", "no")),
        ]
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> RedisServer:
        """Start the server and return once it answers PING."""
        self._process = subprocess.Popen(  # noqa: S603  (our own argv, no shell)
            self._argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(redis.ConnectionError):
                if client.ping():
                    return self
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on port {self.port} does not answer")
            time.sleep(0.05)

    def stop(self) -> None:
        """SHUTDOWN, which flushes the append-only file first."""
        if self._process is None:
            return
        # The server may close the connection before it answers: that is the expected reply.
        with contextlib.suppress(redis.ConnectionError):
            redis.Redis.from_url(self.url).shutdown()
        self._process.wait(timeout=10)
        self._process = None

    def outage(self, seconds: float) -> None:
        """Stop, stay away ``seconds``, start again with the same data."""
        self.stop()
        time.sleep(seconds)
        self.start()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
