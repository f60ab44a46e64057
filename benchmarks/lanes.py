"""Phase 5: priority lanes, timed sends enqueued one by one while a backlog drains.

A bulk backlog drains at 10 calls/s while urgent (then normal) sends are enqueued one every
0.5 s: their enqueue-to-sendSingle latency, the budget the backlog still used, the most calls
in any second; and the same with every send in one lane.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from benchmarks.harness import (
    FIRST_CONTACT_ID,
    LANE_QUEUES,
    MESSAGE_ID,
    REPOSITORY,
    Bench,
    Row,
    digits,
    wait,
)
from benchmarks.report import title
from benchmarks.targets import BULK_SHARE_TARGET, RATE_BUDGET, URGENT_P99_TARGET
from tasks.core.send_options import parse_priority
from tasks.sandbox.state import max_in_window

#: The documented worker command line, two processes, 10 calls/s.
LANE_WORKERS = 2
LANE_CONCURRENCY = 16
#: Runs: urgent sends behind a bulk backlog, normal ones behind it, and every send in one lane.
LANE_RUNS = 3
#: How long a run waits for its sends to reach sendSingle (one lane: they are behind the backlog).
LANE_PATIENCE = 30.0
ONE_LANE_PATIENCE = 60.0
#: Seconds between two samples of the workers' busy threads (``celery inspect active``).
THREAD_SAMPLE_EVERY = 2.0


@dataclass(frozen=True)
class LaneRun:
    """Sends of one lane enqueued one by one while a backlog of another (or the same) drains."""

    #: Enqueue to sendSingle, seconds, of each send that got there (in enqueue order).
    latencies: list[float]
    sends: int
    #: From the first send's enqueue to the last one's sendSingle (or the end of the wait).
    window: float
    #: Engage calls in the window for the backlog's recipients, and for the sends'.
    backlog_calls: int
    send_calls: int
    #: Backlog messages still queued when the first send was enqueued, and backlog sendSingles
    #: per second in the window.
    queued_ahead: int
    backlog_rate: float
    #: The most Engage calls the sandbox saw in any one-second window of the run.
    busiest: int
    #: Samples of the workers' busy threads: {lane queue: tasks running}, and prefetched ones.
    threads: list[dict[str, int]]

    def quantile(self, q: float) -> float:
        """The q-quantile of the latencies (inclusive method: p99 of 20 is near the maximum)."""
        if len(self.latencies) < 2:
            return self.latencies[0] if self.latencies else float("nan")
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[round(q * 100) - 1]

    def budget_share(self, interval: float) -> float:
        """The backlog's calls over the slots the sends left in the window."""
        slots = int(self.window / interval) + 1
        return self.backlog_calls / max(1, slots - self.send_calls)


def contacts_needed(bulk: int, sends: int) -> int:
    """Recipients this phase uses: each run's backlog and timed sends."""
    return LANE_RUNS * (bulk + sends)


def run(bench: Bench) -> None:
    """The three runs, then the rows: latencies, the one-lane estimate, bulk's share, busiest."""
    args = bench.args
    title(
        f"5. lanes: {args.lanes_bulk} bulk sends queued (cold), then {args.lanes_sends} sends "
        f"one every {args.lanes_every:g} s; {LANE_WORKERS} workers x {args.lanes_concurrency} "
        f"threads, {RATE_BUDGET} calls/s"
        + (f", prefetch multiplier {args.lanes_prefetch}" if args.lanes_prefetch else "")
        + (f", variant {args.lanes_variant}" if args.lanes_variant else "")
    )
    urgent = _lane_run(bench, "urgent", backlog="bulk", lane="urgent", patience=LANE_PATIENCE)
    _show_lane_run("urgent behind bulk", urgent)
    normal = _lane_run(bench, "normal", backlog="bulk", lane="normal", patience=LANE_PATIENCE)
    _show_lane_run("normal behind bulk", normal)
    one = _lane_run(bench, "one", backlog="normal", lane="normal", patience=ONE_LANE_PATIENCE)
    _show_lane_run("one lane (before lanes)", one)
    interval = 1.05 / RATE_BUDGET  # the limiter's slot spacing (JITTER_ALLOWANCE)
    bench.add(
        Row(
            "urgent enqueue -> sendSingle, p50 / p99 / max (bulk backlog)",
            _latency_text(urgent),
            f"p99 <= {URGENT_P99_TARGET:g} s",
            len(urgent.latencies) == urgent.sends and urgent.quantile(0.99) <= URGENT_P99_TARGET,
        )
    )
    bench.add(
        Row(
            "normal enqueue -> sendSingle, p50 / p99 / max (bulk backlog)",
            _latency_text(normal),
        )
    )
    # In one FIFO queue a send's lookup waits for every lookup queued ahead, and its
    # send_single, published at the back, for the send_single of each of those.
    calls_per_second = one.backlog_calls / one.window
    expected = (2 * one.queued_ahead + 2) / calls_per_second
    bench.add(
        Row(
            "one lane (before): enqueue -> sendSingle behind the same backlog",
            f"{len(one.latencies)} of {one.sends} within {ONE_LANE_PATIENCE:g} s; "
            f"{one.queued_ahead} sends queued ahead, 2 calls each at "
            f"{calls_per_second:.2f} calls/s: ~{expected:.0f} s",
        )
    )
    share = urgent.budget_share(interval)
    bench.add(
        Row(
            "bulk's share of the budget the urgent sends left (urgent run)",
            f"{share:.1%} ({urgent.backlog_calls} calls in {urgent.window:.1f} s, "
            f"{urgent.send_calls} urgent)",
            f">= {BULK_SHARE_TARGET:.0%}",
            share >= BULK_SHARE_TARGET,
        )
    )
    busiest = max(urgent.busiest, normal.busiest, one.busiest)
    bench.add(
        Row(
            "most Engage calls in any 1 s window (urgent / normal / one-lane run)",
            f"{busiest} ({urgent.busiest} / {normal.busiest} / {one.busiest})",
            f"<= {RATE_BUDGET}",
            busiest <= RATE_BUDGET,
        )
    )
    bench.add(Row("busy threads by queue, urgent run (samples)", _threads_text(urgent.threads)))


def _lane_run(bench: Bench, name: str, *, backlog: str, lane: str, patience: float) -> LaneRun:
    """Queue the backlog, start the workers, then enqueue the sends and time them."""
    from tasks.api import send_prepared_sms  # noqa: PLC0415  (after the environment is set)

    args = bench.args
    bench.state.reset()
    bench.flush()
    backlog_ids = {FIRST_CONTACT_ID + r for r in bench.recipients(args.lanes_bulk)}
    send_ids = [FIRST_CONTACT_ID + r for r in bench.recipients(args.lanes_sends)]
    for contact_id in sorted(backlog_ids):
        send_prepared_sms(
            MESSAGE_ID,
            mobile="+" + digits(contact_id - FIRST_CONTACT_ID),
            idempotency_key=f"{name}-backlog-{contact_id}",
            priority=backlog,
        )
    options: tuple[str, ...] = ()
    if args.lanes_prefetch:
        options = ("--prefetch-multiplier", str(args.lanes_prefetch))
    env = {"ENGAGE_RATE_LIMIT": f"{RATE_BUDGET}"}
    if args.lanes_variant:
        # The package's worker with one part of the design off (benchmarks/variants.py).
        env |= {"BENCH_VARIANT": args.lanes_variant, "PYTHONPATH": str(REPOSITORY)}
        options += ("-A", "benchmarks.variants")
    bench.start_pipeline_workers(LANE_WORKERS, args.lanes_concurrency, options=options, **env)
    # Draining: Engage calls for the backlog (lookups first: each send_single is chained
    # behind its lookup, at the back of the backlog's queue).
    wait(lambda: len(bench.state.calls) >= 10, 60, "the backlog draining")
    time.sleep(args.lanes_settle)
    sampler = _ThreadSampler()
    sampler.start()
    queued_ahead = int(bench.db.llen(LANE_QUEUES[parse_priority(backlog)]))
    enqueued: dict[int, float] = {}
    first = time.time()
    for n, contact_id in enumerate(send_ids):
        time.sleep(max(0.0, first + n * args.lanes_every - time.time()))
        enqueued[contact_id] = time.time()
        send_prepared_sms(
            MESSAGE_ID,
            mobile="+" + digits(contact_id - FIRST_CONTACT_ID),
            idempotency_key=f"{name}-send-{contact_id}",
            priority=lane,
        )

    def reached() -> dict[int, float]:
        return {
            int(c.query["recipientId"]): c.at
            for c in bench.state.calls_to("message/sendSingle")
            if int(c.query["recipientId"]) in enqueued
        }

    wait(lambda: len(reached()) == len(send_ids), patience, None)
    done = reached()
    end = max(done.values()) if len(done) == len(send_ids) else time.time()
    sampler.stop()
    bench.stop_workers()
    calls = list(bench.state.calls)
    by_digits = {digits(i - FIRST_CONTACT_ID): i for i in (*backlog_ids, *send_ids)}

    def recipient(call: Any) -> int | None:
        if call.operation == "message/sendSingle":
            return int(call.query["recipientId"])
        return by_digits.get(str((call.body or {}).get("value")))

    in_window = [c for c in calls if first <= c.at <= end]
    backlog_sent = [
        c for c in in_window if c.operation == "message/sendSingle" and recipient(c) in backlog_ids
    ]
    return LaneRun(
        latencies=[done[i] - enqueued[i] for i in send_ids if i in done],
        sends=len(send_ids),
        window=end - first,
        backlog_calls=sum(1 for c in in_window if recipient(c) in backlog_ids),
        send_calls=sum(1 for c in in_window if recipient(c) in enqueued),
        queued_ahead=queued_ahead,
        backlog_rate=len(backlog_sent) / max(end - first, 1e-9),
        busiest=max_in_window([c.at for c in calls], 1.0),
        threads=sampler.samples,
    )


class _ThreadSampler:
    """Samples the workers' busy threads by queue (``celery inspect active``) on a thread."""

    def __init__(self) -> None:
        self.samples: list[dict[str, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="thread-sampler", daemon=True)

    def start(self) -> None:
        """Start sampling every THREAD_SAMPLE_EVERY seconds."""
        self._thread.start()

    def stop(self) -> None:
        """Stop and wait for the last sample."""
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        from tasks.worker.app import app  # noqa: PLC0415  (after the environment is set)

        while not self._stop.wait(THREAD_SAMPLE_EVERY):
            inspect = app.control.inspect(timeout=1.0)
            active = inspect.active() or {}
            reserved = inspect.reserved() or {}
            sample: Counter[str] = Counter()
            for tasks in active.values():
                for task in tasks:
                    sample[str(task.get("delivery_info", {}).get("routing_key"))] += 1
            sample["prefetched"] = sum(len(tasks) for tasks in reserved.values())
            self.samples.append(dict(sample))


def _latency_text(run: LaneRun) -> str:
    if not run.latencies:
        return f"none of {run.sends} reached sendSingle"
    missing = run.sends - len(run.latencies)
    return f"{run.quantile(0.5):.2f} / {run.quantile(0.99):.2f} / {max(run.latencies):.2f} s" + (
        f" ({missing} of {run.sends} never got there)" if missing else ""
    )


def _threads_text(samples: list[dict[str, int]]) -> str:
    if not samples:
        return "no samples"
    queues = sorted({q for s in samples for q in s})
    return (
        "; ".join(
            f"{q} mean {statistics.mean(s.get(q, 0) for s in samples):.1f} max "
            f"{max(s.get(q, 0) for s in samples)}"
            for q in queues
        )
        + f" ({len(samples)} samples)"
    )


def _show_lane_run(name: str, run: LaneRun) -> None:
    print(
        f"  {name}: {_latency_text(run)}; window {run.window:.1f} s, {run.backlog_calls} backlog "
        f"calls and {run.send_calls} for the sends, backlog {run.backlog_rate:.2f} sends/s, "
        f"{run.queued_ahead} queued ahead; most calls in 1 s: {run.busiest}; threads: "
        f"{_threads_text(run.threads)}",
        flush=True,
    )
