"""``make bench``: what one send costs and how fast sends go, measured on real processes.

Real Redis (database 10, flushed at start and at the end), real ``celery -A tasks worker``
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
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import signal
import statistics
import sys
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

from tasks.cli.local_stack import ManagedProcess, celery_worker, ensure_redis, start_worker
from tasks.sandbox import Sandbox, SandboxState

BROKER = bench_baseline.BROKER_URL
USER = "api@example.com"
PASSWORD = "sandbox-password"  # noqa: S105  (the local sandbox's password, not a secret)
PREFIX = "bench"
MESSAGE_ID = 777
FIRST_CONTACT_ID = 300_000
#: Celery's default queue, where the pipeline's tasks go.
PIPELINE_QUEUE = "celery"
#: kombu's Redis transport keeps delivered, unacknowledged messages in this hash.
UNACKED_KEY = "unacked"
LOG_DIR = Path(".run")
#: Holds the pid of the running benchmark (the database is flushed at the end, and so is this).
LOCK_KEY = f"{PREFIX}:benchmark-pid"
#: How often completion is polled; the elapsed times are this coarse.
POLL_SECONDS = 0.02
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
#: Targets of issue 5.
CPU_RATIO_TARGET = 1.3
LATENCY_RATE_TARGET = 150.0
COLD_RATE_TARGET = 4.5
WARM_RATE_TARGET = 9.0
RATE_BUDGET = 10
ENQUEUE_MEDIAN_TARGET_MS = 1.0
#: Rate-limited phase: worker processes and threads per process.
RATE_WORKERS = 2
RATE_CONCURRENCY = 16


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
        self.db = redis.Redis.from_url(BROKER)
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

    def start_pipeline_workers(self, count: int, concurrency: int, **env: str) -> list[int]:
        """Start ``count`` ``celery -A tasks worker`` processes; their pids."""
        pids = []
        for _ in range(count):
            self._started_workers += 1
            name = f"bench{self._started_workers}"
            worker = celery_worker(
                self.worker_env(**env), LOG_DIR / f"{name}.log", name=name, concurrency=concurrency
            )
            self.workers.append(worker)
            pids.append(_pid(start_worker(worker)))
        return pids

    def start_baseline_worker(self, concurrency: int) -> list[int]:
        """Start the bare-chain worker with the same pool, concurrency and options."""
        scripts = str(Path(__file__).resolve().parent)
        env = {**os.environ, "PYTHONPATH": scripts}
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
        queue: str,
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

    def _wait_until_idle(self, queue: str, deadline: float) -> float:
        """When the queue, the unacked hash and the ledger's in-flight set were first all empty.

        Confirmed by a second look one poll later: a message popped from the queue is in
        neither place for an instant before kombu records it as unacknowledged.
        """
        seen: float | None = None
        while True:
            with self.db.pipeline(transaction=True) as pipe:
                pipe.llen(queue)
                pipe.hlen(UNACKED_KEY)
                pipe.zcard(f"{PREFIX}:inflight")
                idle = not any(pipe.execute())
            self._own.update(("multi", "llen", "hlen", "zcard", "exec"))
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

        def send(n: int) -> None:
            data = {
                "message_id": MESSAGE_ID,
                "identifier": {"type": "MOBILE", "value": _digits(recipients[n])},
                "parameters": [],
            }
            key, task_ids = f"{tag}-{n}", [uuid(), uuid()]
            chain(
                bench_baseline.first.s(data, key, task_ids).set(task_id=task_ids[0]),
                bench_baseline.second.s(data, key, task_ids).set(task_id=task_ids[1]),
            ).apply_async()

        return send

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
        """1. Worker CPU per message: the bare chain, then the full pipeline (sandbox at once)."""
        args = self.args
        n, c = args.messages, args.concurrency
        _title(f"1. CPU per message: {n} messages (+{args.warmup} warm-up), {c} threads")
        pids = self.start_baseline_worker(c)
        send = self.baseline_sender("bare-warm", self.recipients(args.warmup))
        self.measure(pids, send, args.warmup, queue=bench_baseline.QUEUE, timeout=60)
        send = self.baseline_sender("bare", self.recipients(n))
        bare = self.measure(pids, send, n, queue=bench_baseline.QUEUE, timeout=120)
        self.stop_workers()
        _show_run("bare chain", bare)

        self.state.reset()
        pids = self.start_pipeline_workers(1, c, ENGAGE_RATE_LIMIT="0")
        send = self.pipeline_sender("cpu-warm", self.recipients(args.warmup))
        self.measure(pids, send, args.warmup, queue=PIPELINE_QUEUE, timeout=60)
        self.state.reset()
        send = self.pipeline_sender("cpu", self.recipients(n))
        full = self.measure(pids, send, n, queue=PIPELINE_QUEUE, timeout=180)
        self.stop_workers()
        stats = self.check_sends("CPU phase", n, n)
        _show_run(f"pipeline ({stats['calls']} Engage calls)", full)

        bare_ms = bare.ms_per_message(bare.worker_cpu)
        full_ms = full.ms_per_message(full.worker_cpu)
        ratio = full_ms / bare_ms
        self.add(Row("worker CPU per message, bare chain", f"{bare_ms:.2f} ms"))
        self.add(Row("worker CPU per message, pipeline (cold cache)", f"{full_ms:.2f} ms"))
        self.add(
            Row(
                "worker CPU, pipeline / bare chain",
                f"{ratio:.2f}x",
                f"<= {CPU_RATIO_TARGET:g}x",
                ratio <= CPU_RATIO_TARGET,
            )
        )
        self.add(Row("messages/s, bare chain", f"{bare.rate:.0f} msg/s"))
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

    def _shortest_span(self, calls: int) -> float:
        """The least time the sandbox saw between a call and the one ``calls - 1`` later."""
        times = sorted(c.at for c in self.state.calls)
        return min((b - a for a, b in zip(times, times[calls - 1 :], strict=False)), default=0.0)


# -- helpers ---------------------------------------------------------------------------------


def _digits(n: int) -> str:
    return f"4861{n:07d}"


def _contacts_needed(args: argparse.Namespace) -> int:
    latency = sum(layout.warmup + args.latency_messages for layout in args.latency_concurrency)
    cold = round(args.rate_seconds * RATE_BUDGET / 2)
    return int(2 * (args.warmup + args.messages) + latency + cold + args.enqueues + 2 * args.warmup)


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
    from tasks import engage_http  # noqa: PLC0415  (needs no settings, kept beside its only use)

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
    parser.add_argument(
        "--phases", default="4123", help="which phases to run, in this order (default 4123)"
    )
    return parser.parse_args()


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # the finally blocks stop the workers and the sandbox


def main() -> int:
    """Run the phases and print the figures."""
    args = _arguments()
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    started = time.monotonic()
    ensure_redis(BROKER)
    bench = Bench(args)
    holder = bench.db.get(LOCK_KEY)
    if holder is not None and Path(f"/proc/{int(holder)}").exists():
        # A second run would flush the first one's queue and ledger and ruin both sets of figures.
        print(f"another benchmark (pid {int(holder)}) is using {BROKER}; try again later")
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
        "CELERY_BROKER_URL": BROKER,
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
        "4": bench.phase_enqueue,
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


if __name__ == "__main__":
    sys.exit(main())
