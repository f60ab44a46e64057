"""Phase 2: messages/s when every Engage call takes 50 ms (rate limit lifted), per worker layout."""

from __future__ import annotations

import os
from dataclasses import dataclass

from benchmarks.harness import PIPELINE_QUEUE, Bench, Row, Run
from benchmarks.report import show_run, title
from benchmarks.targets import LATENCY_RATE_TARGET

#: Every Engage call's answer time in this phase, seconds (the sandbox's latency fault).
CALL_LATENCY = 0.05


@dataclass(frozen=True)
class Layout:
    """Worker processes and threads per process: ``32`` or ``2x32`` on the command line."""

    processes: int
    threads: int

    @classmethod
    def parse(cls, text: str) -> Layout:
        """``"64"`` is one process of 64 threads, ``"2x32"`` two processes of 32."""
        processes, _, threads = text.rpartition("x")
        return cls(int(processes or 1), int(threads))

    @property
    def warmup(self) -> int:
        """Enough messages to start every thread and open its connections."""
        return max(2 * self.processes * self.threads, 50)

    @property
    def label(self) -> str:
        """How the table names it."""
        if self.processes == 1:
            return f"1 worker x {self.threads} threads"
        return f"{self.processes} workers x {self.threads} threads"

    def __str__(self) -> str:
        return f"{self.processes}x{self.threads}"


#: ``--latency-concurrency``'s default.
DEFAULT_LAYOUTS = [Layout(1, 32), Layout(2, 32), Layout(3, 16)]


def contacts_needed(layouts: list[Layout], messages: int) -> int:
    """Recipients this phase uses: each layout's warm-up and its measured batch."""
    return sum(layout.warmup + messages for layout in layouts)


def run(bench: Bench) -> None:
    """Measure each layout of ``--latency-concurrency`` and add a row per layout."""
    args = bench.args
    n = args.latency_messages
    title(f"2. 50 ms per Engage call: {n} messages per worker layout")
    results: dict[Layout, Run] = {}
    for layout in args.latency_concurrency:
        bench.state.reset()
        bench.state.set_faults({"latency": CALL_LATENCY})
        pids = bench.start_pipeline_workers(layout.processes, layout.threads, ENGAGE_RATE_LIMIT="0")
        send = bench.pipeline_sender(f"lat{layout}-warm", bench.recipients(layout.warmup))
        bench.measure(pids, send, layout.warmup, queue=PIPELINE_QUEUE, timeout=60)
        bench.state.reset()
        bench.state.set_faults({"latency": CALL_LATENCY})
        send = bench.pipeline_sender(f"lat{layout}", bench.recipients(n))
        measured = bench.measure(pids, send, n, queue=PIPELINE_QUEUE, timeout=120)
        bench.stop_workers()
        bench.check_sends(f"latency phase, {layout.label}", n, n)
        results[layout] = measured
        show_run(layout.label, measured)
    bench.state.reset()
    best = max(results, key=lambda layout: results[layout].rate)
    for layout, measured in results.items():
        bench.add(
            Row(
                f"messages/s, 50 ms latency, {layout.label}",
                f"{measured.rate:.0f} msg/s (workers {measured.worker_load:.2f} cores, "
                f"machine {measured.machine_load:.2f} of {os.cpu_count()})",
                f">= {LATENCY_RATE_TARGET:g} msg/s" if layout == best else "",
                measured.rate >= LATENCY_RATE_TARGET if layout == best else None,
            )
        )
    bench.add(Row("best layout under 50 ms latency", best.label))
