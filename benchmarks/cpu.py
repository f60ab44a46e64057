"""Phase 1: worker CPU per message, the two baselines and the pipeline in alternating rounds.

The machine's speed drifts by 20% from minute to minute, so each round measures all three
chains (in a rotating order) and the ratios are taken within a round; the figures are the
medians over the rounds. Both workers run throughout; each one's CPU is its own.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

from benchmarks import baseline
from benchmarks.harness import PIPELINE_QUEUE, Bench, Row, Run
from benchmarks.report import per_message, show_run, title
from benchmarks.targets import CPU_RATIO_TARGET, REQUESTS_RATIO_TARGET

Sender = Callable[[str, list[int]], Callable[[int], None]]


def run(bench: Bench) -> None:
    """Measure the bare chain, the requests chain and the pipeline; add their rows."""
    args = bench.args
    n, c = args.messages, args.concurrency
    title(
        f"1. CPU per message: {args.cpu_rounds} rounds of {n} messages per chain "
        f"(+{args.warmup} warm-up), {c} threads"
    )
    bare_pids = bench.start_baseline_worker(c)
    pipeline = bench.start_pipeline_workers(1, c, ENGAGE_RATE_LIMIT="0")
    chains: dict[str, tuple[list[int], Sender, Any]] = {
        "bare chain": (bare_pids, bench.baseline_sender, baseline.QUEUE),
        "requests chain": (bare_pids, bench.requests_sender, baseline.QUEUE),
        "pipeline": (pipeline, bench.pipeline_sender, PIPELINE_QUEUE),
    }
    for name, (pids, sender, queue) in chains.items():
        send = sender(f"{name[:3]}-warm", bench.recipients(args.warmup))
        bench.measure(pids, send, args.warmup, queue=queue, timeout=60)
    runs: dict[str, list[Run]] = {name: [] for name in chains}
    names = list(chains)
    for round_ in range(args.cpu_rounds):
        for name in names[round_ % 3 :] + names[: round_ % 3]:
            pids, sender, queue = chains[name]
            bench.state.reset()
            send = sender(f"{name[:3]}-{round_}", bench.recipients(n))
            measured = bench.measure(pids, send, n, queue=queue, timeout=180)
            if name != "bare chain":
                bench.check_sends(f"CPU phase, {name}, round {round_ + 1}", n, n)
            runs[name].append(measured)
            show_run(f"round {round_ + 1}, {name}", measured)
    bench.stop_workers()
    bench.state.reset()
    _add_rows(bench, runs, names, n)


def _cpu(run: Run) -> float:
    return run.ms_per_message(run.worker_cpu)


def _add_rows(bench: Bench, runs: dict[str, list[Run]], names: list[str], n: int) -> None:
    def median_run(name: str) -> Run:
        ordered = sorted(runs[name], key=_cpu)
        return ordered[len(ordered) // 2]

    bare, plain, full = (median_run(name) for name in names)
    plain_ratios = [
        _cpu(f) / _cpu(p) for f, p in zip(runs["pipeline"], runs["requests chain"], strict=True)
    ]
    bare_ratios = [
        _cpu(f) / _cpu(b) for f, b in zip(runs["pipeline"], runs["bare chain"], strict=True)
    ]
    plain_ratio, ratio = statistics.median(plain_ratios), statistics.median(bare_ratios)
    bench.add(Row("worker CPU per message, bare chain (median)", f"{_cpu(bare):.2f} ms"))
    bench.add(
        Row(
            "worker CPU per message, requests chain (2 calls, autoretry; median)",
            f"{_cpu(plain):.2f} ms",
        )
    )
    bench.add(Row("worker CPU per message, pipeline (cold cache; median)", f"{_cpu(full):.2f} ms"))
    bench.add(
        Row(
            "worker CPU, pipeline / requests chain (median of rounds)",
            f"{plain_ratio:.2f}x ({', '.join(f'{r:.2f}' for r in plain_ratios)})",
            f"<= {REQUESTS_RATIO_TARGET:g}x",
            plain_ratio <= REQUESTS_RATIO_TARGET,
        )
    )
    bench.add(
        Row(
            "worker CPU, pipeline / bare chain (median of rounds)",
            f"{ratio:.2f}x ({', '.join(f'{r:.2f}' for r in bare_ratios)})",
            f"<= {CPU_RATIO_TARGET:g}x",
            ratio <= CPU_RATIO_TARGET,
        )
    )
    bench.add(Row("messages/s, bare chain", f"{bare.rate:.0f} msg/s"))
    bench.add(Row("messages/s, requests chain", f"{plain.rate:.0f} msg/s"))
    bench.add(Row("messages/s, pipeline (no latency, no rate limit)", f"{full.rate:.0f} msg/s"))
    bench.add(
        Row(
            "enqueue CPU per message, bare chain / send_prepared_sms",
            f"{bare.ms_per_message(bare.enqueue_cpu):.2f} / "
            f"{full.ms_per_message(full.enqueue_cpu):.2f} ms",
        )
    )
    bench.add(
        Row(
            "Redis commands per message, bare chain / pipeline",
            f"{bare.redis_commands / n:.1f} / {full.redis_commands / n:.1f}",
        )
    )
    bench.add(
        Row(
            "Redis server CPU per message, bare chain / pipeline",
            f"{bare.ms_per_message(bare.redis_cpu):.2f} / "
            f"{full.ms_per_message(full.redis_cpu):.2f} ms",
        )
    )
    print("    Redis commands per message (server-wide):")
    print(f"      bare chain: {per_message(bare)}")
    print(f"      pipeline:   {per_message(full)}", flush=True)
