"""``python -m benchmarks``: the arguments, the run's Redis and sandbox, the phases, the table."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import redis

from benchmarks import baseline, cpu, enqueue, lanes, latency, rate, records
from benchmarks.harness import LOCK_KEY, LOG_DIR, PASSWORD, PREFIX, USER, Bench, bench_redis
from benchmarks.report import busy_processes, machine, print_table
from benchmarks.targets import RATE_BUDGET

#: Each phase by its number on the command line (``--phases``).
PHASES: dict[str, Callable[[Bench], None]] = {
    "1": cpu.run,
    "2": latency.run,
    "3": rate.run,
    "4": enqueue.run,
    "5": lanes.run,
    "6": records.run,
}


def contacts_needed(args: argparse.Namespace) -> int:
    """Sandbox contacts for every phase: no two messages of the run share a recipient by chance."""
    cpu_contacts = 3 * (args.warmup + args.cpu_rounds * args.messages)
    return int(
        cpu_contacts
        + latency.contacts_needed(args.latency_concurrency, args.latency_messages)
        + rate.cold_messages(args.rate_seconds)
        + args.enqueues
        + 2 * args.warmup
        + lanes.contacts_needed(args.lanes_bulk, args.lanes_sends)
    )


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line: sizes, phases, worker layouts."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="make bench: what one send costs and how fast sends go, on real processes",
    )
    parser.add_argument("--messages", type=int, default=2000, help="CPU phase batch (default 2000)")
    parser.add_argument("--warmup", type=int, default=200, help="warm-up batch (default 200)")
    parser.add_argument("--concurrency", type=int, default=16, help="CPU phase threads")
    parser.add_argument("--cpu-rounds", type=int, default=3, help="CPU phase rounds (default 3)")
    parser.add_argument("--latency-messages", type=int, default=1500)
    parser.add_argument(
        "--latency-concurrency",
        type=latency.Layout.parse,
        nargs="+",
        default=latency.DEFAULT_LAYOUTS,
        help="worker layouts of the latency phase: threads, or processes x threads",
    )
    parser.add_argument("--rate-seconds", type=float, default=25.0)
    parser.add_argument("--enqueues", type=int, default=2000)
    parser.add_argument(
        "--engage-rate-limit",
        type=float,
        default=float(RATE_BUDGET),
        help="ENGAGE_RATE_LIMIT of the rate phase's workers (the budget checked stays 10/s)",
    )
    parser.add_argument("--lanes-bulk", type=int, default=2000, help="lanes phase backlog")
    parser.add_argument("--lanes-sends", type=int, default=20, help="lanes phase timed sends")
    parser.add_argument("--lanes-every", type=float, default=0.5, help="seconds between them")
    parser.add_argument(
        "--lanes-settle", type=float, default=5.0, help="seconds of draining before the sends"
    )
    parser.add_argument(
        "--lanes-prefetch",
        type=int,
        default=None,
        help="worker --prefetch-multiplier for the lanes phase (default: the configured one)",
    )
    parser.add_argument(
        "--lanes-concurrency", type=int, default=lanes.LANE_CONCURRENCY, help="lanes phase threads"
    )
    parser.add_argument(
        "--lanes-variant",
        choices=("round_robin",),
        help="lanes phase with one part of the design off (benchmarks/variants.py)",
    )
    parser.add_argument(
        "--phases", default="412356", help="which phases to run, in this order (default 412356)"
    )
    return parser.parse_args(argv)


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # the finally blocks stop the workers and the sandbox


def main(argv: list[str] | None = None) -> int:
    """Run the phases and print the figures."""
    args = arguments(argv)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    started = time.monotonic()
    baseline.use_broker(bench_redis())
    bench = Bench(args, contacts_needed(args))
    holder = bench.db.get(LOCK_KEY)
    if holder is not None and Path(f"/proc/{int(holder)}").exists():
        # A second run would flush the first one's queue and ledger and ruin both sets of figures.
        print(f"another benchmark (pid {int(holder)}) uses {baseline.BROKER_URL}; try later")
        return 1
    bench.flush()
    for old in LOG_DIR.glob("bench*.log"):
        old.unlink()
    print("engage-sms benchmark:", " ".join([sys.executable, *sys.argv]))
    for line in machine(bench.db):
        print("  " + line)
    busy = busy_processes()
    if busy:
        print("  WARNING: other processes are busy, figures may be disturbed: " + ", ".join(busy))
    bench.sandbox.start()
    print(f"  sandbox answer time (contact/get, one client): {bench.sandbox_answer_ms():.2f} ms")
    env = {
        "ENGAGE_BROKER_URL": baseline.BROKER_URL,
        "REDIS_URL": baseline.BROKER_URL,
        "ENGAGE_BASE_URL": bench.sandbox.base_url,
        "ENGAGE_USERNAME": USER,
        "ENGAGE_PASSWORD": PASSWORD,
        "ENGAGE_KEY_PREFIX": PREFIX,
    }
    # This process is the web process: tasks/worker/config.py reads the environment once.
    os.environ.update(env)
    failed = False
    try:
        for key in args.phases:
            try:
                PHASES[key](bench)
            except (TimeoutError, RuntimeError) as err:
                failed = True
                bench.problems.append(f"phase {key}: {type(err).__name__}: {err}")
                print(f"  phase {key} failed: {err}", flush=True)
            finally:
                bench.stop_workers()
    except KeyboardInterrupt:
        print("\ninterrupted: stopping workers", flush=True)
        return 130
    finally:
        bench.stop_workers()
        bench.sandbox.stop()
        with contextlib.suppress(redis.RedisError):
            bench.db.flushdb()
    if bench.rows:
        print_table(bench.rows)
    for problem in bench.problems:
        print("PROBLEM:", problem)
    busy = busy_processes()
    if busy:
        print("WARNING: other processes were busy at the end: " + ", ".join(busy))
    print(f"\ntotal time {time.monotonic() - started:.0f} s")
    return 1 if failed else 0
