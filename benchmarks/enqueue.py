"""Phase 4: latency of ``send_prepared_sms`` with nothing consuming, and Redis round trips."""

from __future__ import annotations

import statistics
import time

from benchmarks.harness import Bench, Row, counting_round_trips
from benchmarks.report import title
from benchmarks.targets import ENQUEUE_MEDIAN_TARGET_MS


def run(bench: Bench) -> None:
    """Time ``--enqueues`` calls after ``--warmup`` ones, then count a batch's round trips."""
    args = bench.args
    title(f"4. enqueue latency: {args.enqueues} send_prepared_sms calls, no worker")
    send = bench.pipeline_sender("enq", bench.recipients(args.enqueues + 2 * args.warmup))
    for n in range(args.warmup):
        send(n)
    latencies = []
    cpu = time.thread_time()
    for n in range(args.warmup, args.warmup + args.enqueues):
        started = time.perf_counter()
        send(n)
        latencies.append(time.perf_counter() - started)
    cpu = time.thread_time() - cpu
    before = bench.redis_counters()[1]
    with counting_round_trips() as round_trips:
        for n in range(args.warmup + args.enqueues, args.enqueues + 2 * args.warmup):
            send(n)
    after = bench.redis_counters()[1]
    commands = sum(after.values()) - sum(before.values()) - 1  # the second INFO itself
    bench.flush()
    median = statistics.median(latencies) * 1000
    p99 = statistics.quantiles(latencies, n=100)[98] * 1000
    bench.add(
        Row(
            "enqueue latency, median",
            f"{median:.3f} ms",
            f"< {ENQUEUE_MEDIAN_TARGET_MS:g} ms",
            median < ENQUEUE_MEDIAN_TARGET_MS,
        )
    )
    bench.add(Row("enqueue latency, p99", f"{p99:.3f} ms"))
    bench.add(Row("enqueue CPU per call (web process)", f"{1000 * cpu / args.enqueues:.3f} ms"))
    bench.add(
        Row(
            "Redis round trips per enqueue (client-side count)",
            f"{round_trips.call_count / args.warmup:.2f}",
        )
    )
    bench.add(Row("Redis commands per enqueue (server-wide)", f"{commands / args.warmup:.2f}"))
