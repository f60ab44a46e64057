"""``make bench``, replica acks: enqueue and worker CPU with ``ENGAGE_REPLICA_ACKS`` 1 against 0.

A primary and one replica of this run's own on free loopback ports, the sandbox answering at
once, one real worker per setting. Acks 1 adds a ``WAIT`` to the claim's and to the lease's
round trip (pipelined: no extra round trip), so what it costs locally is the replica's
acknowledgement; between hosts it is one network round trip more per write. Rounds alternate
the two settings so a busy machine weighs on both alike. Prints medians and the ratios.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

import redis

from benchmarks.harness import cpu_seconds as _cpu_seconds
from tasks.cli.local_stack import celery_worker, start_worker
from tasks.cli.redis_server import RedisServer
from tasks.sandbox import Sandbox, SandboxState

USER, PASSWORD = "api@example.com", "sandbox-password"
MESSAGE_ID = 555
FIRST_CONTACT_ID = 100_000


def main() -> int:
    """Measure both settings and print the ratios."""
    args = _arguments()
    run_dir = Path(".run") / "bench-replicas"
    shutil.rmtree(run_dir, ignore_errors=True)
    primary = RedisServer(run_dir / "primary", persistent=False).start()
    replica = RedisServer(run_dir / "replica", persistent=False).start()
    state = SandboxState(username=USER, password=PASSWORD, messages=())
    state.add_messages([{"messageId": MESSAGE_ID}])
    total = args.messages * args.rounds * 2 + args.enqueues * args.rounds * 2
    state.add_contacts(
        {"type": "MOBILE", "value": f"4860{n:07d}", "contactId": FIRST_CONTACT_ID + n}
        for n in range(total)
    )
    sandbox = Sandbox(state).start()
    try:
        _link(replica, primary)
        base = {
            **os.environ,
            "CELERY_BROKER_URL": primary.url,
            "ENGAGE_BASE_URL": sandbox.base_url,
            "ENGAGE_USERNAME": USER,
            "ENGAGE_PASSWORD": PASSWORD,
            "ENGAGE_RATE_LIMIT": "0",
            "ENGAGE_REPLICA_ACK_TIMEOUT": "1000",
        }
        os.environ.update(base)
        return _measure(args, base, run_dir)
    finally:
        sandbox.stop()
        replica.stop()
        primary.stop()


def _measure(args: argparse.Namespace, base: dict[str, str], run_dir: Path) -> int:
    from tasks.core.request import build_send_request  # noqa: PLC0415
    from tasks.core.settings import load_settings  # noqa: PLC0415
    from tasks.delivery.runtime import Runtime  # noqa: PLC0415  (after the environment is set)
    from tasks.worker.publish import enqueue  # noqa: PLC0415

    runtimes = {
        acks: Runtime.build(load_settings({**base, "ENGAGE_REPLICA_ACKS": str(acks)}))
        for acks in (0, 1)
    }
    enqueue_ms: dict[int, list[float]] = {0: [], 1: []}
    cpu_ms: dict[int, list[float]] = {0: [], 1: []}
    number = 0
    for round_ in range(args.rounds):
        for acks in (0, 1) if round_ % 2 == 0 else (1, 0):
            rt = runtimes[acks]
            for _ in range(args.enqueues):
                request = build_send_request(MESSAGE_ID, mobile=f"+4860{number:07d}")
                began = time.perf_counter()
                enqueue(rt, request, f"bench-enqueue-{number}")
                enqueue_ms[acks].append((time.perf_counter() - began) * 1000)
                number += 1
            rt.redis.flushdb()  # nothing for the worker below to find
            env = {**base, "ENGAGE_REPLICA_ACKS": str(acks)}
            worker = start_worker(
                celery_worker(env, run_dir / f"worker-{acks}.log", name=f"acks{acks}")
            )
            try:
                assert worker.process is not None
                pid = worker.process.pid
                before = _cpu_seconds(pid)
                keys = []
                for _ in range(args.messages):
                    request = build_send_request(MESSAGE_ID, mobile=f"+4860{number:07d}")
                    keys.append(enqueue(rt, request, f"bench-cpu-{number}").key)
                    number += 1
                _wait_until_sent(rt, keys)
                cpu_ms[acks].append((_cpu_seconds(pid) - before) * 1000 / args.messages)
            finally:
                worker.stop()
            rt.redis.flushdb()
    _report(enqueue_ms, cpu_ms, args)
    return 0


def _report(
    enqueue_ms: dict[int, list[float]], cpu_ms: dict[int, list[float]], args: argparse.Namespace
) -> None:
    e0, e1 = statistics.median(enqueue_ms[0]), statistics.median(enqueue_ms[1])
    c0, c1 = statistics.median(cpu_ms[0]), statistics.median(cpu_ms[1])
    print()
    print("replica acks: primary + 1 replica on loopback, sandbox answering at once")
    print(
        f"enqueue, median of {len(enqueue_ms[0])} each:      acks 0 {e0:.2f} ms, "
        f"acks 1 {e1:.2f} ms: x{e1 / e0:.2f}"
    )
    print(
        f"worker CPU per message ({args.rounds} rounds): acks 0 {c0:.2f} ms, "
        f"acks 1 {c1:.2f} ms: x{c1 / c0:.2f}"
    )


def _link(replica: RedisServer, primary: RedisServer) -> None:
    client = redis.Redis(port=replica.port)
    client.replicaof("127.0.0.1", primary.port)
    deadline = time.monotonic() + 30
    while client.info("replication").get("master_link_status") != "up":
        if time.monotonic() > deadline:
            raise RuntimeError("the replica did not link")
        time.sleep(0.05)


def _wait_until_sent(rt: object, keys: list[str], timeout: float = 300.0) -> None:
    ledger = rt.ledger  # type: ignore[attr-defined]
    deadline = time.monotonic() + timeout
    for key in keys:
        while ledger.state(key) != "sent":
            if time.monotonic() > deadline:
                raise RuntimeError(f"{key} not sent in time")
            time.sleep(0.05)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.replicas", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--enqueues", type=int, default=1000, help="enqueues per round")
    parser.add_argument("--messages", type=int, default=600, help="sends per worker round")
    parser.add_argument("--rounds", type=int, default=2, help="rounds per setting")
    return parser.parse_args()


if __name__ == "__main__":
    sys.exit(main())
