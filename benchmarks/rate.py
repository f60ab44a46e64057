"""Phase 3: messages/s under the 10 requests/s budget with two workers, cold then warm cache."""

from __future__ import annotations

from benchmarks.harness import PIPELINE_QUEUE, Bench, Row
from benchmarks.report import show_run, title
from benchmarks.targets import COLD_RATE_TARGET, RATE_BUDGET, WARM_RATE_TARGET

#: Worker processes and threads per process.
RATE_WORKERS = 2
RATE_CONCURRENCY = 16


def cold_messages(seconds: float) -> int:
    """Messages of the cold run (two calls each): ``seconds`` of the budget."""
    return round(seconds * RATE_BUDGET / 2)


def run(bench: Bench) -> None:
    """Measure a cold batch then a warm one to the same contacts; add the rate rows."""
    seconds = bench.args.rate_seconds
    limit = bench.args.engage_rate_limit
    cold_n = cold_messages(seconds)
    warm_n = round(seconds * RATE_BUDGET)
    title(
        f"3. {RATE_BUDGET} requests/s budget, {RATE_WORKERS} workers x {RATE_CONCURRENCY} "
        f"threads: {cold_n} cold, then {warm_n} warm messages"
    )
    bench.state.reset()
    pids = bench.start_pipeline_workers(
        RATE_WORKERS, RATE_CONCURRENCY, ENGAGE_RATE_LIMIT=f"{limit:g}"
    )
    cold_recipients = bench.recipients(cold_n)
    send = bench.pipeline_sender("cold", cold_recipients)
    cold = bench.measure(pids, send, cold_n, queue=PIPELINE_QUEUE, timeout=4 * seconds + 30)
    cold_stats = bench.check_sends("rate phase, cold cache", cold_n, cold_n)
    show_run(f"cold cache ({cold_stats['calls']} Engage calls)", cold)
    spans = [bench.shortest_span(RATE_BUDGET + 1)]

    bench.state.reset()
    send = bench.pipeline_sender("warm", cold_recipients * 2)
    warm = bench.measure(pids, send, warm_n, queue=PIPELINE_QUEUE, timeout=4 * seconds + 30)
    warm_stats = bench.check_sends("rate phase, warm cache", warm_n, cold_n)
    show_run(f"warm cache ({warm_stats['calls']} Engage calls)", warm)
    spans.append(bench.shortest_span(RATE_BUDGET + 1))
    bench.stop_workers()
    bench.state.reset()

    busiest = max(cold_stats["max_calls_per_second"], warm_stats["max_calls_per_second"])
    bench.add(
        Row(
            "messages/s at 10 req/s, cold cache (2 calls each)",
            f"{cold.rate:.2f} msg/s",
            f">= {COLD_RATE_TARGET:g} msg/s",
            cold.rate >= COLD_RATE_TARGET,
        )
    )
    bench.add(
        Row(
            "messages/s at 10 req/s, warm cache (1 call each)",
            f"{warm.rate:.2f} msg/s",
            f">= {WARM_RATE_TARGET:g} msg/s",
            warm.rate >= WARM_RATE_TARGET,
        )
    )
    bench.add(
        Row(
            "most Engage calls in any 1 s window (cold / warm)",
            f"{busiest} ({cold_stats['max_calls_per_second']} / "
            f"{warm_stats['max_calls_per_second']})",
            f"<= {RATE_BUDGET}",
            busiest <= RATE_BUDGET,
        )
    )
    bench.add(
        Row(
            f"shortest span of {RATE_BUDGET + 1} consecutive Engage calls (cold / warm)",
            f"{spans[0] * 1000:.1f} / {spans[1] * 1000:.1f} ms (ENGAGE_RATE_LIMIT={limit:g})",
        )
    )
