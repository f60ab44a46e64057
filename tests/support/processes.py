"""Fresh interpreters and commands: for what a process reads once (configuration, imports)."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from tasks.cli.demo import flower_process
from tasks.cli.local_stack import ManagedProcess, celery_worker, start_worker

#: Generous: two cores are shared by every test and helper process.
TIMEOUT = 90
#: The state of a listening socket in /proc/net/tcp.
LISTEN = "0A"


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


def listening_addresses(port: int) -> set[str]:
    """The local addresses TCP sockets listen on at ``port`` (Linux: read from /proc/net)."""
    found: set[str] = set()
    for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        path = Path("/proc/net") / table
        lines = path.read_text().splitlines()[1:] if path.exists() else []
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.rpartition(":")
            if state == LISTEN and int(hex_port, 16) == port:
                # The kernel writes the address as 32-bit words in host (little-endian) order.
                words = [bytes.fromhex(address[i : i + 8])[::-1] for i in range(0, len(address), 8)]
                found.add(socket.inet_ntop(family, b"".join(words)))
    return found


def start_worker_and_flower(
    env: dict[str, str],
    logs: Path,
    *,
    name: str,
    password: str,
    port: int,
    started: list[ManagedProcess],
) -> tuple[ManagedProcess, ManagedProcess]:
    """A real worker, then Flower behind basic auth on ``port``: (worker, Flower).

    Each process goes into ``started`` as soon as it runs, so the caller stops whatever started.
    """
    worker = celery_worker(env, logs / "worker.log", name=name)
    started.append(worker)
    start_worker(worker)
    flower = flower_process(env, logs / "flower.log", password=password, port=port)
    started.append(flower)
    flower.start()
    flower.wait_for_log("Visit me at", 60.0)
    return worker, flower
