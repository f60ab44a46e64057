"""``make bench``: what one send costs and how fast sends go, measured on real processes.

Real Redis (a throwaway server of its own, or ``BENCH_REDIS_URL``'s database, flushed at start
and at the end), real ``celery -A tasks worker``
processes (thread pool) and the Engage sandbox on a thread of this process, which also plays the
web process that enqueues. Prints the machine, the figures and their targets; it is no test: it
exits 0 whatever the figures (1 when a phase could not run at all).

1. Worker CPU per delivered message, the full pipeline beside a bare chain of two trivial tasks
   (``scripts/bench_baseline.py``) on the same Redis with the same worker settings.
2. Messages/s when every Engage call takes 50 ms (rate limit lifted), per worker layout
   (threads per worker, and two workers).
3. Messages/s under a 10 requests/s budget with two workers, cold and warm contact cache, and
   the most calls the sandbox saw in any one-second window.
4. Enqueue latency of ``send_prepared_sms`` from a web process, and Redis round trips per call.
5. Priority lanes: a bulk backlog drains at 10 calls/s while urgent (then normal) sends are
   enqueued one every 0.5 s: their enqueue-to-sendSingle latency, the budget the backlog still
   used, the most calls in any second; and the same with every send in one lane.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import os
import platform
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any
from unittest import mock

import bench_baseline
import celery
import kombu
import redis
from celery import chain, uuid
from redis.connection import AbstractConnection

from tasks.cli.local_stack import ManagedProcess, celery_worker, start_worker
from tasks.cli.redis_server import RedisServer
from tasks.sandbox import Sandbox, SandboxState
from tasks.sandbox.state import max_in_window
from tasks.send_options import lane_queues, parse_priority

USER = "api@example.com"
PASSWORD = "sandbox-password"  # noqa: S105  (the local sandbox's password, not a secret)
PREFIX = "bench"
MESSAGE_ID = 777
FIRST_CONTACT_ID = 300_000
#: The priority lanes' queues, where the pipeline's tasks go (named by the key prefix).
LANE_QUEUES = lane_queues(PREFIX)
PIPELINE_QUEUE = tuple(LANE_QUEUES.values())
#: kombu's Redis transport keeps delivered, unacknowledged messages in these hashes: the
#: baseline app's (kombu's name) and the pipeline's (its deployment's, named by the prefix).
UNACKED_KEYS = ("unacked", f"{PREFIX}.unacked")
LOG_DIR = Path(".run")
#: Holds the pid of the running benchmark (the database is flushed at the end, and so is this).
LOCK_KEY = f"{PREFIX}:benchmark-pid"
#: How often completion is polled; the elapsed times are this coarse.
POLL_SECONDS = 0.02
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
#: Targets of issue 5.
CPU_RATIO_TARGET = 1.3
#: Issue 12: worker CPU per message against the chain a user would write with requests.
REQUESTS_RATIO_TARGET = 1.25
LATENCY_RATE_TARGET = 150.0
COLD_RATE_TARGET = 4.5
WARM_RATE_TARGET = 9.0
RATE_BUDGET = 10
ENQUEUE_MEDIAN_TARGET_MS = 1.0
#: Rate-limited phase: worker processes and threads per process.
RATE_WORKERS = 2
RATE_CONCURRENCY = 16
#: Lanes phase (issue 12): the documented worker command line, two processes, 10 calls/s.
LANE_WORKERS = 2
LANE_CONCURRENCY = 16
URGENT_P99_TARGET = 1.0
BULK_SHARE_TARGET = 0.90
#: Runs of the lanes phase: urgent sends behind a bulk backlog, normal ones behind it, and every
#: send in one lane (how it was before lanes).
LANE_RUNS = 3
#: How long a run waits for its sends to reach sendSingle (one lane: they are behind the backlog).
LANE_PATIENCE = 30.0
ONE_LANE_PATIENCE = 60.0
#: Seconds between two samples of the workers' busy threads (``celery inspect active``).
THREAD_SAMPLE_EVERY = 2.0


@dataclass(frozen=True)
class Run:
    """One measured batch, from the first enqueue to the last completion."""

    messages: int
    elapsed: float
    worker_cpu: float
    enqueue_cpu: float
    enqueue_wall: float
    redis_cpu: float
    #: This process: the sandbox's threads, the enqueueing and the polling.
    bench_cpu: float
    redis_commands: int
    commandstats: dict[str, int] = field(repr=False)

    @property
    def rate(self) -> float:
        """Messages per second."""
        return self.messages / self.elapsed

    def ms_per_message(self, seconds: float) -> float:
        """``seconds`` spread over the batch, in milliseconds per message."""
        return 1000 * seconds / self.messages

    @property
    def worker_load(self) -> float:
        """Worker CPU over wall time: 1.0 is one core busy all along."""
        return self.worker_cpu / self.elapsed

    @property
    def machine_load(self) -> float:
        """Cores kept busy by the workers, Redis and this process together."""
        return (self.worker_cpu + self.redis_cpu + self.bench_cpu) / self.elapsed


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


@dataclass(frozen=True)
class Row:
    """One line of the final table."""

    figure: str
    value: str
    target: str = ""
    passed: bool | None = None

    @property
    def result(self) -> str:
        """PASS, MISS or nothing (a figure without a target)."""
        return "" if self.passed is None else ("PASS" if self.passed else "MISS")


class Bench:
    """The sandbox, the benchmark's Redis database and the worker processes of one run."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.db = redis.Redis.from_url(bench_baseline.BROKER_URL)
        self.rows: list[Row] = []
        self.workers: list[ManagedProcess] = []
        self.problems: list[str] = []
        self._next_contact = 0
        self._started_workers = 0
        #: Commands this process sent for its own bookkeeping, taken out of the server's counts.
        self._own: Counter[str] = Counter()
        self.state = SandboxState(
            username=USER,
            password=PASSWORD,
            contacts=tuple(
                {"type": "MOBILE", "value": _digits(n), "contactId": FIRST_CONTACT_ID + n}
                for n in range(_contacts_needed(args))
            ),
            messages=({"messageId": MESSAGE_ID, "requiredParameters": []},),
        )
        self.sandbox = Sandbox(self.state)

    # -- processes -----------------------------------------------------------------------------

    def worker_env(self, **extra: str) -> dict[str, str]:
        """The environment of a pipeline worker: this process's plus ``extra``."""
        return {**os.environ, **extra}

    def start_pipeline_workers(
        self, count: int, concurrency: int, *, options: tuple[str, ...] = (), **env: str
    ) -> list[int]:
        """Start ``count`` ``celery -A tasks worker`` processes (plus ``options``); their pids."""
        pids = []
        for _ in range(count):
            self._started_workers += 1
            name = f"bench{self._started_workers}"
            worker = celery_worker(
                self.worker_env(**env), LOG_DIR / f"{name}.log", name=name, concurrency=concurrency
            )
            if "-A" in options:  # another app module: replace the one celery_worker names
                at = options.index("-A")
                worker.argv[worker.argv.index("-A") + 1] = options[at + 1]
                options = options[:at] + options[at + 2 :]
            worker.argv += options
            self.workers.append(worker)
            pids.append(_pid(start_worker(worker)))
        return pids

    def start_baseline_worker(self, concurrency: int) -> list[int]:
        """Start the bare-chain worker with the same pool, concurrency and options."""
        scripts = str(Path(__file__).resolve().parent)
        env = {
            **os.environ,
            "PYTHONPATH": scripts,
            "BENCH_ENGAGE_URL": self.sandbox.base_url,
            "BENCH_ENGAGE_USERNAME": USER,
            "BENCH_ENGAGE_PASSWORD": PASSWORD,
        }
        log = LOG_DIR / "bench-baseline.log"
        # The pipeline's worker command line, with only the app swapped: same options throughout.
        argv = celery_worker(
            env, log, name="baseline", concurrency=concurrency, queues=bench_baseline.QUEUE
        ).argv
        argv[argv.index("-A") + 1] = "bench_baseline"
        worker = ManagedProcess(argv, env=env, log_path=log)
        self.workers.append(worker)
        return [_pid(start_worker(worker))]

    def stop_workers(self) -> None:
        """Stop every worker this run started (graceful, then SIGKILL)."""
        while self.workers:
            self.workers.pop().stop()

    # -- measuring -----------------------------------------------------------------------------

    def measure(
        self,
        pids: list[int],
        enqueue: Callable[[int], None],
        count: int,
        *,
        queue: str | tuple[str, ...],
        timeout: float,
    ) -> Run:
        """Enqueue ``count`` messages and wait until the broker and the ledger are empty."""
        cpu_before = sum(_cpu_seconds(p) for p in pids)
        bench_before = _cpu_seconds(os.getpid())
        redis_before = self._redis_counters()
        self._own.clear()
        started = time.perf_counter()
        enqueue_cpu = time.thread_time()
        for n in range(count):
            enqueue(n)
        enqueue_cpu = time.thread_time() - enqueue_cpu
        enqueue_wall = time.perf_counter() - started
        finished = self._wait_until_idle(queue, started + timeout)
        cpu_after = sum(_cpu_seconds(p) for p in pids)
        bench_after = _cpu_seconds(os.getpid())
        redis_after = self._redis_counters()
        stats = {
            name: delta
            for name, calls in redis_after[1].items()
            if (delta := calls - redis_before[1].get(name, 0) - self._own[name]) > 0
        }
        return Run(
            messages=count,
            elapsed=finished - started,
            worker_cpu=cpu_after - cpu_before,
            enqueue_cpu=enqueue_cpu,
            enqueue_wall=enqueue_wall,
            redis_cpu=redis_after[0] - redis_before[0],
            bench_cpu=bench_after - bench_before,
            redis_commands=sum(stats.values()),
            commandstats=stats,
        )

    def _wait_until_idle(self, queue: str | tuple[str, ...], deadline: float) -> float:
        """When the queues, the unacked hash and the ledger's in-flight set were first all empty.

        Confirmed by a second look one poll later: a message popped from the queue is in
        neither place for an instant before kombu records it as unacknowledged.
        """
        queues = (queue,) if isinstance(queue, str) else queue
        seen: float | None = None
        while True:
            with self.db.pipeline(transaction=True) as pipe:
                for name in queues:
                    pipe.llen(name)
                for unacked in UNACKED_KEYS:
                    pipe.hlen(unacked)
                pipe.zcard(f"{PREFIX}:inflight")
                idle = not any(pipe.execute())
            self._own.update(("multi", "zcard", "exec"))
            self._own["llen"] += len(queues)
            self._own["hlen"] += len(UNACKED_KEYS)
            now = time.perf_counter()
            if idle and seen is not None:
                return seen
            seen = now if idle else None
            if now > deadline:
                raise TimeoutError(f"queue {queue!r} not drained in time")
            time.sleep(POLL_SECONDS)

    def _redis_counters(self) -> tuple[float, dict[str, int]]:
        """Redis server CPU seconds and calls per command so far (server-wide)."""
        cpu = self.db.info("cpu")
        stats = self.db.info("commandstats")
        self._own["info"] += 2
        calls = {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}
        return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"]), calls

    def flush(self) -> None:
        """Empty the benchmark's database, keeping the mark that this run is using it."""
        self.db.flushdb()
        self.db.set(LOCK_KEY, os.getpid())

    def recipients(self, count: int) -> list[int]:
        """``count`` contacts no phase has used yet (not in the contact cache)."""
        first = self._next_contact
        self._next_contact += count
        return list(range(first, first + count))

    def pipeline_sender(self, tag: str, recipients: list[int]) -> Callable[[int], None]:
        """Enqueue message ``n`` as a web process would: ``send_prepared_sms``."""
        from tasks.api import send_prepared_sms  # noqa: PLC0415  (after the environment is set)

        def send(n: int) -> None:
            send_prepared_sms(
                MESSAGE_ID, mobile="+" + _digits(recipients[n]), idempotency_key=f"{tag}-{n}"
            )

        return send

    def baseline_sender(self, tag: str, recipients: list[int]) -> Callable[[int], None]:
        """Publish the bare chain with the arguments the pipeline's chain carries."""
        return _chain_sender(bench_baseline.first, bench_baseline.second, tag, recipients)

    def requests_sender(self, tag: str, recipients: list[int]) -> Callable[[int], None]:
        """Publish the requests chain (the two Engage calls a user would make) for message n."""
        return _chain_sender(bench_baseline.lookup, bench_baseline.send, tag, recipients)

    def check_sends(self, run_name: str, expected: int, recipients: int) -> dict[str, Any]:
        """Sandbox figures of the run; a problem is noted unless every message arrived once.

        ``recipients`` distinct contacts received the ``expected`` messages (the warm-cache run
        sends each contact two messages under two keys: those repeats are no duplicates).
        """
        stats = self.state.stats()
        dead = int(self.db.zcard(f"{PREFIX}:dlq"))
        if stats["sends"] != expected or stats["distinct_sends"] != recipients or dead:
            self.problems.append(
                f"{run_name}: {stats['sends']} sends to {stats['distinct_sends']} contacts for "
                f"{expected} messages to {recipients}, {dead} dead-lettered"
            )
        return stats

    def add(self, row: Row) -> None:
        """Keep a row for the table and show it at once."""
        self.rows.append(row)
        mark = f"  [{row.result}]" if row.result else ""
        print(f"    {row.figure}: {row.value}{mark}", flush=True)

    # -- phases --------------------------------------------------------------------------------

    def phase_records(self) -> None:
        """6. Memory of a finished send's ledger record (sending policy: slim final records)."""
        import record_size  # noqa: PLC0415  (scripts/record_size.py: its own Redis and sandbox)

        _title("6. final ledger records by MEMORY USAGE (own Redis, steps in this process)")
        for state, values in record_size.run().items():
            worst = max(values)
            self.add(
                Row(
                    f"final {state} record (MEMORY USAGE, max)",
                    f"{worst} B",
                    f"<= {record_size.TARGET_BYTES} B",
                    worst <= record_size.TARGET_BYTES,
                )
            )

    def phase_enqueue(self) -> None:
        """4. Latency of send_prepared_sms with nothing consuming, and Redis round trips."""
        args = self.args
        _title(f"4. enqueue latency: {args.enqueues} send_prepared_sms calls, no worker")
        send = self.pipeline_sender("enq", self.recipients(args.enqueues + 2 * args.warmup))
        for n in range(args.warmup):
            send(n)
        latencies = []
        cpu = time.thread_time()
        for n in range(args.warmup, args.warmup + args.enqueues):
            started = time.perf_counter()
            send(n)
            latencies.append(time.perf_counter() - started)
        cpu = time.thread_time() - cpu
        before = self._redis_counters()[1]
        with _counting_round_trips() as round_trips:
            for n in range(args.warmup + args.enqueues, args.enqueues + 2 * args.warmup):
                send(n)
        after = self._redis_counters()[1]
        commands = sum(after.values()) - sum(before.values()) - 1  # the second INFO itself
        self.flush()
        median = statistics.median(latencies) * 1000
        p99 = statistics.quantiles(latencies, n=100)[98] * 1000
        self.add(
            Row(
                "enqueue latency, median",
                f"{median:.3f} ms",
                f"< {ENQUEUE_MEDIAN_TARGET_MS:g} ms",
                median < ENQUEUE_MEDIAN_TARGET_MS,
            )
        )
        self.add(Row("enqueue latency, p99", f"{p99:.3f} ms"))
        self.add(Row("enqueue CPU per call (web process)", f"{1000 * cpu / args.enqueues:.3f} ms"))
        self.add(
            Row(
                "Redis round trips per enqueue (client-side count)",
                f"{round_trips.call_count / args.warmup:.2f}",
            )
        )
        self.add(Row("Redis commands per enqueue (server-wide)", f"{commands / args.warmup:.2f}"))

    def phase_cpu(self) -> None:
        """1. Worker CPU per message: the two baselines and the pipeline, in alternating rounds.

        The machine's speed drifts by 20% from minute to minute, so each round measures all three
        chains (in a rotating order) and the ratios are taken within a round; the figures are the
        medians over the rounds. Both workers run throughout; each one's CPU is its own.
        """
        args = self.args
        n, c = args.messages, args.concurrency
        _title(
            f"1. CPU per message: {args.cpu_rounds} rounds of {n} messages per chain "
            f"(+{args.warmup} warm-up), {c} threads"
        )
        baseline = self.start_baseline_worker(c)
        pipeline = self.start_pipeline_workers(1, c, ENGAGE_RATE_LIMIT="0")
        chains: dict[str, tuple[list[int], Callable[[str, list[int]], Callable[[int], None]], Any]]
        chains = {
            "bare chain": (baseline, self.baseline_sender, bench_baseline.QUEUE),
            "requests chain": (baseline, self.requests_sender, bench_baseline.QUEUE),
            "pipeline": (pipeline, self.pipeline_sender, PIPELINE_QUEUE),
        }
        for name, (pids, sender, queue) in chains.items():
            send = sender(f"{name[:3]}-warm", self.recipients(args.warmup))
            self.measure(pids, send, args.warmup, queue=queue, timeout=60)
        runs: dict[str, list[Run]] = {name: [] for name in chains}
        names = list(chains)
        for round_ in range(args.cpu_rounds):
            for name in names[round_ % 3 :] + names[: round_ % 3]:
                pids, sender, queue = chains[name]
                self.state.reset()
                send = sender(f"{name[:3]}-{round_}", self.recipients(n))
                run = self.measure(pids, send, n, queue=queue, timeout=180)
                if name != "bare chain":
                    self.check_sends(f"CPU phase, {name}, round {round_ + 1}", n, n)
                runs[name].append(run)
                _show_run(f"round {round_ + 1}, {name}", run)
        self.stop_workers()
        self.state.reset()

        def cpu(run: Run) -> float:
            return run.ms_per_message(run.worker_cpu)

        def median_run(name: str) -> Run:
            ordered = sorted(runs[name], key=cpu)
            return ordered[len(ordered) // 2]

        bare, plain, full = (median_run(name) for name in names)
        plain_ratios = [
            cpu(f) / cpu(p) for f, p in zip(runs["pipeline"], runs["requests chain"], strict=True)
        ]
        bare_ratios = [
            cpu(f) / cpu(b) for f, b in zip(runs["pipeline"], runs["bare chain"], strict=True)
        ]
        plain_ratio, ratio = statistics.median(plain_ratios), statistics.median(bare_ratios)
        self.add(Row("worker CPU per message, bare chain (median)", f"{cpu(bare):.2f} ms"))
        self.add(
            Row(
                "worker CPU per message, requests chain (2 calls, autoretry; median)",
                f"{cpu(plain):.2f} ms",
            )
        )
        self.add(
            Row("worker CPU per message, pipeline (cold cache; median)", f"{cpu(full):.2f} ms")
        )
        self.add(
            Row(
                "worker CPU, pipeline / requests chain (median of rounds)",
                f"{plain_ratio:.2f}x ({', '.join(f'{r:.2f}' for r in plain_ratios)})",
                f"<= {REQUESTS_RATIO_TARGET:g}x",
                plain_ratio <= REQUESTS_RATIO_TARGET,
            )
        )
        self.add(
            Row(
                "worker CPU, pipeline / bare chain (median of rounds)",
                f"{ratio:.2f}x ({', '.join(f'{r:.2f}' for r in bare_ratios)})",
                f"<= {CPU_RATIO_TARGET:g}x",
                ratio <= CPU_RATIO_TARGET,
            )
        )
        self.add(Row("messages/s, bare chain", f"{bare.rate:.0f} msg/s"))
        self.add(Row("messages/s, requests chain", f"{plain.rate:.0f} msg/s"))
        self.add(Row("messages/s, pipeline (no latency, no rate limit)", f"{full.rate:.0f} msg/s"))
        self.add(
            Row(
                "enqueue CPU per message, bare chain / send_prepared_sms",
                f"{bare.ms_per_message(bare.enqueue_cpu):.2f} / "
                f"{full.ms_per_message(full.enqueue_cpu):.2f} ms",
            )
        )
        self.add(
            Row(
                "Redis commands per message, bare chain / pipeline",
                f"{bare.redis_commands / n:.1f} / {full.redis_commands / n:.1f}",
            )
        )
        self.add(
            Row(
                "Redis server CPU per message, bare chain / pipeline",
                f"{bare.ms_per_message(bare.redis_cpu):.2f} / "
                f"{full.ms_per_message(full.redis_cpu):.2f} ms",
            )
        )
        print("    Redis commands per message (server-wide):")
        print(f"      bare chain: {_per_message(bare)}")
        print(f"      pipeline:   {_per_message(full)}", flush=True)

    def phase_latency(self) -> None:
        """2. Throughput when every Engage call takes 50 ms, rate limit lifted."""
        args = self.args
        n = args.latency_messages
        _title(f"2. 50 ms per Engage call: {n} messages per worker layout")
        results: dict[Layout, Run] = {}
        for layout in args.latency_concurrency:
            self.state.reset()
            self.state.set_faults({"latency": 0.05})
            pids = self.start_pipeline_workers(
                layout.processes, layout.threads, ENGAGE_RATE_LIMIT="0"
            )
            send = self.pipeline_sender(f"lat{layout}-warm", self.recipients(layout.warmup))
            self.measure(pids, send, layout.warmup, queue=PIPELINE_QUEUE, timeout=60)
            self.state.reset()
            self.state.set_faults({"latency": 0.05})
            send = self.pipeline_sender(f"lat{layout}", self.recipients(n))
            run = self.measure(pids, send, n, queue=PIPELINE_QUEUE, timeout=120)
            self.stop_workers()
            self.check_sends(f"latency phase, {layout.label}", n, n)
            results[layout] = run
            _show_run(layout.label, run)
        self.state.reset()
        best = max(results, key=lambda layout: results[layout].rate)
        for layout, run in results.items():
            self.add(
                Row(
                    f"messages/s, 50 ms latency, {layout.label}",
                    f"{run.rate:.0f} msg/s (workers {run.worker_load:.2f} cores, "
                    f"machine {run.machine_load:.2f} of {os.cpu_count()})",
                    f">= {LATENCY_RATE_TARGET:g} msg/s" if layout == best else "",
                    run.rate >= LATENCY_RATE_TARGET if layout == best else None,
                )
            )
        self.add(Row("best layout under 50 ms latency", best.label))

    def phase_rate(self) -> None:
        """3. Throughput under a 10 requests/s budget, cold then warm contact cache."""
        seconds = self.args.rate_seconds
        cold_n = round(seconds * RATE_BUDGET / 2)
        warm_n = round(seconds * RATE_BUDGET)
        _title(
            f"3. {RATE_BUDGET} requests/s budget, {RATE_WORKERS} workers x {RATE_CONCURRENCY} "
            f"threads: {cold_n} cold, then {warm_n} warm messages"
        )
        self.state.reset()
        pids = self.start_pipeline_workers(
            RATE_WORKERS, RATE_CONCURRENCY, ENGAGE_RATE_LIMIT=f"{self.args.engage_rate_limit:g}"
        )
        cold_recipients = self.recipients(cold_n)
        send = self.pipeline_sender("cold", cold_recipients)
        cold = self.measure(pids, send, cold_n, queue=PIPELINE_QUEUE, timeout=4 * seconds + 30)
        cold_stats = self.check_sends("rate phase, cold cache", cold_n, cold_n)
        _show_run(f"cold cache ({cold_stats['calls']} Engage calls)", cold)
        spans = [self._shortest_span(RATE_BUDGET + 1)]

        self.state.reset()
        send = self.pipeline_sender("warm", cold_recipients * 2)
        warm = self.measure(pids, send, warm_n, queue=PIPELINE_QUEUE, timeout=4 * seconds + 30)
        warm_stats = self.check_sends("rate phase, warm cache", warm_n, cold_n)
        _show_run(f"warm cache ({warm_stats['calls']} Engage calls)", warm)
        spans.append(self._shortest_span(RATE_BUDGET + 1))
        self.stop_workers()
        self.state.reset()

        busiest = max(cold_stats["max_calls_per_second"], warm_stats["max_calls_per_second"])
        self.add(
            Row(
                "messages/s at 10 req/s, cold cache (2 calls each)",
                f"{cold.rate:.2f} msg/s",
                f">= {COLD_RATE_TARGET:g} msg/s",
                cold.rate >= COLD_RATE_TARGET,
            )
        )
        self.add(
            Row(
                "messages/s at 10 req/s, warm cache (1 call each)",
                f"{warm.rate:.2f} msg/s",
                f">= {WARM_RATE_TARGET:g} msg/s",
                warm.rate >= WARM_RATE_TARGET,
            )
        )
        self.add(
            Row(
                "most Engage calls in any 1 s window (cold / warm)",
                f"{busiest} ({cold_stats['max_calls_per_second']} / "
                f"{warm_stats['max_calls_per_second']})",
                f"<= {RATE_BUDGET}",
                busiest <= RATE_BUDGET,
            )
        )
        self.add(
            Row(
                f"shortest span of {RATE_BUDGET + 1} consecutive Engage calls (cold / warm)",
                f"{spans[0] * 1000:.1f} / {spans[1] * 1000:.1f} ms "
                f"(ENGAGE_RATE_LIMIT={self.args.engage_rate_limit:g})",
            )
        )

    def phase_lanes(self) -> None:
        """5. Priority lanes: urgent, then normal sends enqueued while a bulk backlog drains."""
        args = self.args
        _title(
            f"5. lanes: {args.lanes_bulk} bulk sends queued (cold), then {args.lanes_sends} sends "
            f"one every {args.lanes_every:g} s; {LANE_WORKERS} workers x {args.lanes_concurrency} "
            f"threads, {RATE_BUDGET} calls/s"
            + (f", prefetch multiplier {args.lanes_prefetch}" if args.lanes_prefetch else "")
            + (f", variant {args.lanes_variant}" if args.lanes_variant else "")
        )
        urgent = self._lane_run("urgent", backlog="bulk", lane="urgent", patience=LANE_PATIENCE)
        _show_lane_run("urgent behind bulk", urgent)
        normal = self._lane_run("normal", backlog="bulk", lane="normal", patience=LANE_PATIENCE)
        _show_lane_run("normal behind bulk", normal)
        one = self._lane_run("one", backlog="normal", lane="normal", patience=ONE_LANE_PATIENCE)
        _show_lane_run("one lane (before lanes)", one)
        interval = 1.05 / RATE_BUDGET  # the limiter's slot spacing (JITTER_ALLOWANCE)
        self.add(
            Row(
                "urgent enqueue -> sendSingle, p50 / p99 / max (bulk backlog)",
                _latency_text(urgent),
                f"p99 <= {URGENT_P99_TARGET:g} s",
                len(urgent.latencies) == urgent.sends
                and urgent.quantile(0.99) <= URGENT_P99_TARGET,
            )
        )
        self.add(
            Row(
                "normal enqueue -> sendSingle, p50 / p99 / max (bulk backlog)",
                _latency_text(normal),
            )
        )
        # In one FIFO queue a send's lookup waits for every lookup queued ahead, and its
        # send_single, published at the back, for the send_single of each of those.
        calls_per_second = one.backlog_calls / one.window
        expected = (2 * one.queued_ahead + 2) / calls_per_second
        self.add(
            Row(
                "one lane (before): enqueue -> sendSingle behind the same backlog",
                f"{len(one.latencies)} of {one.sends} within {ONE_LANE_PATIENCE:g} s; "
                f"{one.queued_ahead} sends queued ahead, 2 calls each at "
                f"{calls_per_second:.2f} calls/s: ~{expected:.0f} s",
            )
        )
        share = urgent.budget_share(interval)
        self.add(
            Row(
                "bulk's share of the budget the urgent sends left (urgent run)",
                f"{share:.1%} ({urgent.backlog_calls} calls in {urgent.window:.1f} s, "
                f"{urgent.send_calls} urgent)",
                f">= {BULK_SHARE_TARGET:.0%}",
                share >= BULK_SHARE_TARGET,
            )
        )
        busiest = max(urgent.busiest, normal.busiest, one.busiest)
        self.add(
            Row(
                "most Engage calls in any 1 s window (urgent / normal / one-lane run)",
                f"{busiest} ({urgent.busiest} / {normal.busiest} / {one.busiest})",
                f"<= {RATE_BUDGET}",
                busiest <= RATE_BUDGET,
            )
        )
        self.add(Row("busy threads by queue, urgent run (samples)", _threads_text(urgent.threads)))

    def _lane_run(self, name: str, *, backlog: str, lane: str, patience: float) -> LaneRun:
        """Queue the backlog, start the workers, then enqueue the sends and time them."""
        from tasks.api import send_prepared_sms  # noqa: PLC0415  (after the environment is set)

        args = self.args
        self.state.reset()
        self.flush()
        backlog_ids = {FIRST_CONTACT_ID + r for r in self.recipients(args.lanes_bulk)}
        send_ids = [FIRST_CONTACT_ID + r for r in self.recipients(args.lanes_sends)]
        for contact_id in sorted(backlog_ids):
            send_prepared_sms(
                MESSAGE_ID,
                mobile="+" + _digits(contact_id - FIRST_CONTACT_ID),
                idempotency_key=f"{name}-backlog-{contact_id}",
                priority=backlog,
            )
        options: tuple[str, ...] = ()
        if args.lanes_prefetch:
            options = ("--prefetch-multiplier", str(args.lanes_prefetch))
        env = {"ENGAGE_RATE_LIMIT": f"{RATE_BUDGET}"}
        if args.lanes_variant:
            # The package's worker with one part of the design off (scripts/bench_variants.py).
            scripts = str(Path(__file__).resolve().parent)
            env |= {"BENCH_VARIANT": args.lanes_variant, "PYTHONPATH": scripts}
            options += ("-A", "bench_variants")
        self.start_pipeline_workers(LANE_WORKERS, args.lanes_concurrency, options=options, **env)
        # Draining: Engage calls for the backlog (lookups first: each send_single is chained
        # behind its lookup, at the back of the backlog's queue).
        _wait(lambda: len(self.state.calls) >= 10, 60, "the backlog draining")
        time.sleep(args.lanes_settle)
        sampler = _ThreadSampler()
        sampler.start()
        queued_ahead = int(self.db.llen(LANE_QUEUES[parse_priority(backlog)]))
        enqueued: dict[int, float] = {}
        first = time.time()
        for n, contact_id in enumerate(send_ids):
            time.sleep(max(0.0, first + n * args.lanes_every - time.time()))
            enqueued[contact_id] = time.time()
            send_prepared_sms(
                MESSAGE_ID,
                mobile="+" + _digits(contact_id - FIRST_CONTACT_ID),
                idempotency_key=f"{name}-send-{contact_id}",
                priority=lane,
            )

        def reached() -> dict[int, float]:
            return {
                int(c.query["recipientId"]): c.at
                for c in self.state.calls_to("message/sendSingle")
                if int(c.query["recipientId"]) in enqueued
            }

        _wait(lambda: len(reached()) == len(send_ids), patience, None)
        done = reached()
        end = max(done.values()) if len(done) == len(send_ids) else time.time()
        sampler.stop()
        self.stop_workers()
        calls = list(self.state.calls)
        by_digits = {_digits(i - FIRST_CONTACT_ID): i for i in (*backlog_ids, *send_ids)}

        def recipient(call: Any) -> int | None:
            if call.operation == "message/sendSingle":
                return int(call.query["recipientId"])
            return by_digits.get(str((call.body or {}).get("value")))

        in_window = [c for c in calls if first <= c.at <= end]
        backlog_sent = [
            c
            for c in in_window
            if c.operation == "message/sendSingle" and recipient(c) in backlog_ids
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

    def _shortest_span(self, calls: int) -> float:
        """The least time the sandbox saw between a call and the one ``calls - 1`` later."""
        times = sorted(c.at for c in self.state.calls)
        return min((b - a for a, b in zip(times, times[calls - 1 :], strict=False)), default=0.0)


# -- helpers ---------------------------------------------------------------------------------


def _digits(n: int) -> str:
    """Contact ``n``'s mobile number: Polish mobiles (48 50x), which enqueue validation accepts."""
    return f"4850{n:07d}"


def _contacts_needed(args: argparse.Namespace) -> int:
    latency = sum(layout.warmup + args.latency_messages for layout in args.latency_concurrency)
    cold = round(args.rate_seconds * RATE_BUDGET / 2)
    lanes = LANE_RUNS * (args.lanes_bulk + args.lanes_sends)
    cpu = 3 * (args.warmup + args.cpu_rounds * args.messages)
    return int(cpu + latency + cold + args.enqueues + 2 * args.warmup + lanes)


def _wait(check: Callable[[], bool], timeout: float, what: str | None) -> None:
    """Poll ``check`` until true; past ``timeout`` s raise TimeoutError (``what`` None: return)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            if what is None:
                return
            raise TimeoutError(f"no sign of {what} within {timeout:g} s")
        time.sleep(POLL_SECONDS)


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


def _pid(worker: ManagedProcess) -> int:
    assert worker.process is not None
    return worker.process.pid


def _cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process (all its threads) from /proc/<pid>/stat."""
    # The command name may hold spaces and parentheses: the fields start after the last ")".
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / CLOCK_TICKS


@contextlib.contextmanager
def _counting_round_trips() -> Iterator[mock.MagicMock]:
    """Count sends to Redis in this process: one per command, one per pipeline."""
    original = AbstractConnection.send_packed_command
    with mock.patch.object(
        AbstractConnection, "send_packed_command", autospec=True, side_effect=original
    ) as spy:
        yield spy


def _per_message(run: Run) -> str:
    top = sorted(run.commandstats.items(), key=lambda item: -item[1])
    return ", ".join(f"{name} {calls / run.messages:.2f}" for name, calls in top[:12])


def _show_run(name: str, run: Run) -> None:
    print(
        f"  {name}: {run.messages} in {run.elapsed:.2f} s = {run.rate:.1f} msg/s; "
        f"worker CPU {run.worker_cpu:.2f} s ({run.ms_per_message(run.worker_cpu):.2f} ms/msg, "
        f"{run.worker_load:.0%} of a core); enqueue {run.enqueue_wall:.2f} s wall, "
        f"{run.ms_per_message(run.enqueue_cpu):.3f} ms CPU/msg; "
        f"Redis CPU {run.ms_per_message(run.redis_cpu):.2f} ms/msg; sandbox and enqueuer "
        f"{run.ms_per_message(run.bench_cpu):.2f} ms/msg; {run.machine_load:.2f} cores busy",
        flush=True,
    )


def _title(text: str) -> None:
    print(f"\n== {text}", flush=True)


def _busy_processes(interval: float = 1.0, threshold: float = 0.10) -> list[str]:
    """Processes (other than this one) using more than ``threshold`` of a core right now."""

    def sample() -> dict[int, tuple[str, float]]:
        found = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            with contextlib.suppress(OSError, IndexError, ValueError):
                raw = (entry / "stat").read_text()
                name = raw[raw.index("(") + 1 : raw.rindex(")")]
                found[int(entry.name)] = (name, _cpu_seconds(int(entry.name)))
        return found

    before = sample()
    time.sleep(interval)
    after = sample()
    busy = []
    for pid, (name, cpu) in after.items():
        if pid in before:
            share = (cpu - before[pid][1]) / interval
            if share > threshold:
                busy.append(f"{name} (pid {pid}) {share:.0%}")
    return busy


def _sandbox_answer_ms(bench: Bench, calls: int = 50) -> float:
    """Median wall time of a contact/get answered by the sandbox, through the package's session."""
    from tasks.engage import http as engage_http  # noqa: PLC0415  (beside its only use)

    session = engage_http.make_session(USER, PASSWORD, base_url=bench.sandbox.base_url)
    url = f"{bench.sandbox.base_url}/contact/get"
    times = []
    for n in range(calls):
        started = time.perf_counter()
        session.post(url, json={"type": "MOBILE", "value": _digits(n)}, timeout=(5, 35))
        times.append(time.perf_counter() - started)
    session.close()
    bench.state.reset()
    return statistics.median(times) * 1000


def _machine(db: redis.Redis) -> list[str]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    server = db.info("server")
    return [
        f"CPUs: {len(os.sched_getaffinity(0))} ({model}), load average "
        + " ".join(f"{x:.2f}" for x in os.getloadavg()),
        f"Python {platform.python_version()}, Celery {celery.__version__}, "
        f"kombu {kombu.__version__}, redis-py {redis.__version__}, "
        f"Redis server {server['redis_version']}",
        f"OS: {platform.platform()}",
    ]


def _print_table(rows: list[Row]) -> None:
    width = max(len(r.figure) for r in rows)
    value_width = max(len(r.value) for r in rows)
    target_width = max(len(r.target) for r in rows)
    print(f"\n{'figure':<{width}}  {'value':<{value_width}}  {'target':<{target_width}}  result")
    print("-" * (width + value_width + target_width + 12))
    for r in rows:
        print(
            f"{r.figure:<{width}}  {r.value:<{value_width}}  {r.target:<{target_width}}  {r.result}"
        )


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=2000, help="CPU phase batch (default 2000)")
    parser.add_argument("--warmup", type=int, default=200, help="warm-up batch (default 200)")
    parser.add_argument("--concurrency", type=int, default=16, help="CPU phase threads")
    parser.add_argument("--cpu-rounds", type=int, default=3, help="CPU phase rounds (default 3)")
    parser.add_argument("--latency-messages", type=int, default=1500)
    parser.add_argument(
        "--latency-concurrency",
        type=Layout.parse,
        nargs="+",
        default=[Layout(1, 32), Layout(2, 32), Layout(3, 16)],
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
        "--lanes-concurrency", type=int, default=LANE_CONCURRENCY, help="lanes phase threads"
    )
    parser.add_argument(
        "--lanes-variant",
        choices=("round_robin",),
        help="lanes phase with one part of the design off (scripts/bench_variants.py)",
    )
    parser.add_argument(
        "--phases", default="412356", help="which phases to run, in this order (default 412356)"
    )
    return parser.parse_args()


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # the finally blocks stop the workers and the sandbox


def main() -> int:
    """Run the phases and print the figures."""
    args = _arguments()
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    started = time.monotonic()
    bench_baseline.use_broker(_bench_redis())
    bench = Bench(args)
    holder = bench.db.get(LOCK_KEY)
    if holder is not None and Path(f"/proc/{int(holder)}").exists():
        # A second run would flush the first one's queue and ledger and ruin both sets of figures.
        print(f"another benchmark (pid {int(holder)}) uses {bench_baseline.BROKER_URL}; try later")
        return 1
    bench.flush()
    for old in LOG_DIR.glob("bench*.log"):
        old.unlink()
    print("engage-sms benchmark:", " ".join([sys.executable, *sys.argv]))
    for line in _machine(bench.db):
        print("  " + line)
    busy = _busy_processes()
    if busy:
        print("  WARNING: other processes are busy, figures may be disturbed: " + ", ".join(busy))
    bench.sandbox.start()
    print(f"  sandbox answer time (contact/get, one client): {_sandbox_answer_ms(bench):.2f} ms")
    env = {
        "ENGAGE_BROKER_URL": bench_baseline.BROKER_URL,
        "REDIS_URL": bench_baseline.BROKER_URL,
        "ENGAGE_BASE_URL": bench.sandbox.base_url,
        "ENGAGE_USERNAME": USER,
        "ENGAGE_PASSWORD": PASSWORD,
        "ENGAGE_KEY_PREFIX": PREFIX,
    }
    # This process is the web process: celeryconfig.py reads the environment once, at import.
    os.environ.update(env)
    phases = {
        "1": bench.phase_cpu,
        "2": bench.phase_latency,
        "3": bench.phase_rate,
        "5": bench.phase_lanes,
        "4": bench.phase_enqueue,
        "6": bench.phase_records,
    }
    failed = False
    try:
        for key in args.phases:
            try:
                phases[key]()
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
        _print_table(bench.rows)
    for problem in bench.problems:
        print("PROBLEM:", problem)
    busy = _busy_processes()
    if busy:
        print("WARNING: other processes were busy at the end: " + ", ".join(busy))
    print(f"\ntotal time {time.monotonic() - started:.0f} s")
    return 1 if failed else 0


def _bench_redis() -> str:
    """``BENCH_REDIS_URL`` if the user named a Redis (flushed!), else a throwaway server's own."""
    given = os.environ.get(bench_baseline.BROKER_VARIABLE)
    if given:
        return given
    data_dir = Path(tempfile.mkdtemp(prefix="engage-bench-redis-"))
    server = RedisServer(data_dir, persistent=False).start()
    atexit.register(shutil.rmtree, data_dir, True)
    atexit.register(server.stop)
    return server.url


def _chain_sender(
    first: Any, second: Any, tag: str, recipients: list[int]
) -> Callable[[int], None]:
    """Publish ``first -> second`` for message n with the arguments the pipeline's chain carries."""

    def send(n: int) -> None:
        data = {
            "message_id": MESSAGE_ID,
            "identifier": {"type": "MOBILE", "value": _digits(recipients[n])},
            "parameters": [],
        }
        key, task_ids = f"{tag}-{n}", [uuid(), uuid()]
        chain(
            first.s(data, key, task_ids).set(task_id=task_ids[0]),
            second.s(data, key, task_ids).set(task_id=task_ids[1]),
        ).apply_async()

    return send


if __name__ == "__main__":
    sys.exit(main())
