"""``make bench-http``: enqueueing over HTTP against ``send_prepared_sms`` in process, one run.

Starts its own ``redis-server`` on a free port (data in a temporary directory, deleted at the
end) as broker and state store, and ``engage-sms api`` (one uvicorn process) on it; no worker
runs, so every call enqueues a new send and nothing consumes it. Measures, in this order:

1. ``send_prepared_sms`` called in this process: latency p50/p99 and calls/s (one thread);
2. ``GET /healthz`` over one keep-alive connection: what uvicorn, FastAPI and this client cost
   with no work behind them;
3. ``POST /v1/sends`` with one keep-alive connection (``requests.Session``): latency p50/p99
   and requests/s, as one web process enqueueing one send at a time would see it;
4. the same from ``--clients`` threads, each with its own keep-alive connection: requests/s.

The HTTP figures include this client's own cost (requests builds and parses every request in
Python on the same two cores). Prints the figures; it is no test and exits 0 whatever they are.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import requests

from tasks.cli.local_stack import ManagedProcess
from tasks.cli.redis_server import RedisServer

BODY = {"message_id": 23541, "mobile": "+48 505 606 707", "parameters": {"firstName": "Ann"}}


def main() -> int:
    """Run the phases and print their figures."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.front_door", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--calls", type=int, default=2000, help="calls per phase (default 2000)")
    parser.add_argument("--clients", type=int, default=8, help="threads in phase 4 (default 8)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="engage-bench-http-") as tmp:
        server = RedisServer(Path(tmp) / "redis", persistent=False).start()
        try:
            return run(server.url, Path(tmp), args.calls, args.clients)
        finally:
            server.stop()


def run(redis_url: str, tmp: Path, calls: int, clients: int) -> int:
    """The phases on the Redis at ``redis_url``."""
    # This process is the web process of phase 1 and makes the token: configure it first.
    env = {
        "CELERY_BROKER_URL": redis_url,
        # High enough never to refuse: the check itself (one Redis round trip) is measured.
        "ENGAGE_HTTP_RATE_LIMIT": "1000000",
    }
    os.environ.update(env)
    from tasks.api import send_prepared_sms  # noqa: PLC0415  (after the environment is set)
    from tasks.http.services import current_services  # noqa: PLC0415
    from tasks.http.tokens import Scope  # noqa: PLC0415

    print(f"engage-sms HTTP enqueue benchmark: {calls} calls per phase, Redis {redis_url}")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores\n")

    def in_process(n: int) -> None:
        send_prepared_sms(
            23541,
            mobile="+48 505 606 707",
            parameters={"firstName": "Ann"},
            idempotency_key=f"py-{n}",
        )

    for n in range(50):  # warm up: connections, scripts loaded, imports done
        in_process(-n - 1)
    report("1. send_prepared_sms in process", timed(in_process, calls))

    token = current_services().tokens.create("bench", Scope.SEND).text
    port = _free_port()
    api = ManagedProcess(
        [sys.executable, "-m", "tasks.cli", "api", "--port", str(port)],
        env={**os.environ, **env},
        log_path=tmp / "api.log",
    ).start()
    try:
        api.wait_for_log("Uvicorn running on", 60)
        url = f"http://127.0.0.1:{port}/v1/sends"
        with requests.Session() as http:

            def over_http(n: int, session: requests.Session = http) -> None:
                headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": f"http-{n}"}
                answer = session.post(url, json=BODY, headers=headers, timeout=30)
                if answer.status_code != 202:
                    raise RuntimeError(f"HTTP {answer.status_code}: {answer.text}")

            health = f"http://127.0.0.1:{port}/healthz"

            def floor(_: int) -> None:
                http.get(health, timeout=30).raise_for_status()

            report(
                "2. GET /healthz, one keep-alive connection (server + client floor)",
                timed(floor, calls),
            )
            for n in range(50):
                over_http(-n - 1)
            report("3. POST /v1/sends, one keep-alive connection", timed(over_http, calls))
            concurrent(over_http, calls, clients)
    finally:
        api.stop()
    return 0


def timed(call: Callable[[int], None], calls: int) -> tuple[list[float], float]:
    """Each call's latency (s) and the whole run's wall time."""
    latencies = []
    start = time.perf_counter()
    for n in range(calls):
        before = time.perf_counter()
        call(n)
        latencies.append(time.perf_counter() - before)
    return latencies, time.perf_counter() - start


def report(title: str, run: tuple[list[float], float]) -> None:
    """p50, p99 and calls/s of one phase."""
    latencies, wall = run
    cuts = statistics.quantiles(latencies, n=100)
    print(f"{title}:")
    print(
        f"   p50 {cuts[49] * 1000:.2f} ms   p99 {cuts[98] * 1000:.2f} ms   "
        f"{len(latencies) / wall:.0f} calls/s"
    )


def concurrent(call: Callable[..., None], calls: int, clients: int) -> None:
    """Phase 4: ``clients`` threads, each its own keep-alive connection, ``calls`` in all."""
    per_client = calls // clients
    latencies: list[float] = []
    lock = threading.Lock()

    def client(c: int) -> None:
        with requests.Session() as session:
            mine = []
            for n in range(per_client):
                before = time.perf_counter()
                call(1_000_000 * (c + 1) + n, session)
                mine.append(time.perf_counter() - before)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report(
        f"4. POST /v1/sends, {clients} clients in parallel",
        (latencies, time.perf_counter() - start),
    )


def _free_port() -> int:
    import socket  # noqa: PLC0415  (only here)

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


if __name__ == "__main__":
    sys.exit(main())
