"""What every phase of ``make bench`` runs on: its own Redis, the sandbox, workers, measuring.

Real Redis (a throwaway server of its own, or ``BENCH_REDIS_URL``'s database, flushed at start
and at the end), real ``celery -A tasks worker`` processes (thread pool) and the Engage sandbox
on a thread of this process, which also plays the web process that enqueues. A phase asks the
:class:`Bench` for workers and recipients, measures a batch with :meth:`Bench.measure` and adds
rows to the final table with :meth:`Bench.add`.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import os
import shutil
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import redis
from celery import chain, uuid
from redis.connection import AbstractConnection

from benchmarks import baseline
from tasks.cli.local_stack import ManagedProcess, celery_worker, start_worker
from tasks.cli.redis_server import RedisServer
from tasks.core.send_options import lane_queues
from tasks.sandbox import Sandbox, SandboxState

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
#: The repository: on the worker processes' PYTHONPATH, so ``-A benchmarks.baseline`` imports.
REPOSITORY = Path(__file__).resolve().parents[1]


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

    def __init__(self, args: argparse.Namespace, contacts: int) -> None:
        self.args = args
        self.db = redis.Redis.from_url(baseline.BROKER_URL)
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
                {"type": "MOBILE", "value": digits(n), "contactId": FIRST_CONTACT_ID + n}
                for n in range(contacts)
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
            pids.append(pid_of(start_worker(worker)))
        return pids

    def start_baseline_worker(self, concurrency: int) -> list[int]:
        """Start the bare-chain worker with the same pool, concurrency and options."""
        env = {
            **os.environ,
            "PYTHONPATH": str(REPOSITORY),
            "BENCH_ENGAGE_URL": self.sandbox.base_url,
            "BENCH_ENGAGE_USERNAME": USER,
            "BENCH_ENGAGE_PASSWORD": PASSWORD,
        }
        log = LOG_DIR / "bench-baseline.log"
        # The pipeline's worker command line, with only the app swapped: same options throughout.
        argv = celery_worker(
            env, log, name="baseline", concurrency=concurrency, queues=baseline.QUEUE
        ).argv
        argv[argv.index("-A") + 1] = "benchmarks.baseline"
        worker = ManagedProcess(argv, env=env, log_path=log)
        self.workers.append(worker)
        return [pid_of(start_worker(worker))]

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
        cpu_before = sum(cpu_seconds(p) for p in pids)
        bench_before = cpu_seconds(os.getpid())
        redis_before = self.redis_counters()
        self._own.clear()
        started = time.perf_counter()
        enqueue_cpu = time.thread_time()
        for n in range(count):
            enqueue(n)
        enqueue_cpu = time.thread_time() - enqueue_cpu
        enqueue_wall = time.perf_counter() - started
        finished = self._wait_until_idle(queue, started + timeout)
        cpu_after = sum(cpu_seconds(p) for p in pids)
        bench_after = cpu_seconds(os.getpid())
        redis_after = self.redis_counters()
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

    def redis_counters(self) -> tuple[float, dict[str, int]]:
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
                MESSAGE_ID, mobile="+" + digits(recipients[n]), idempotency_key=f"{tag}-{n}"
            )

        return send

    def baseline_sender(self, tag: str, recipients: list[int]) -> Callable[[int], None]:
        """Publish the bare chain with the arguments the pipeline's chain carries."""
        return _chain_sender(baseline.first, baseline.second, tag, recipients)

    def requests_sender(self, tag: str, recipients: list[int]) -> Callable[[int], None]:
        """Publish the requests chain (the two Engage calls a user would make) for message n."""
        return _chain_sender(baseline.lookup, baseline.send, tag, recipients)

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

    def shortest_span(self, calls: int) -> float:
        """The least time the sandbox saw between a call and the one ``calls - 1`` later."""
        times = sorted(c.at for c in self.state.calls)
        return min((b - a for a, b in zip(times, times[calls - 1 :], strict=False)), default=0.0)

    def add(self, row: Row) -> None:
        """Keep a row for the table and show it at once."""
        self.rows.append(row)
        mark = f"  [{row.result}]" if row.result else ""
        print(f"    {row.figure}: {row.value}{mark}", flush=True)

    def sandbox_answer_ms(self, calls: int = 50) -> float:
        """Median wall time of a sandbox contact/get through the package's own session."""
        from tasks.engage import http as engage_http  # noqa: PLC0415  (beside its only use)

        session = engage_http.make_session(USER, PASSWORD, base_url=self.sandbox.base_url)
        url = f"{self.sandbox.base_url}/contact/get"
        times = []
        for n in range(calls):
            started = time.perf_counter()
            session.post(url, json={"type": "MOBILE", "value": digits(n)}, timeout=(5, 35))
            times.append(time.perf_counter() - started)
        session.close()
        self.state.reset()
        return statistics.median(times) * 1000


def bench_redis() -> str:
    """``BENCH_REDIS_URL`` if the user named a Redis (flushed!), else a throwaway server's own."""
    given = os.environ.get(baseline.BROKER_VARIABLE)
    if given:
        return given
    data_dir = Path(tempfile.mkdtemp(prefix="engage-bench-redis-"))
    server = RedisServer(data_dir, persistent=False).start()
    atexit.register(shutil.rmtree, data_dir, True)
    atexit.register(server.stop)
    return server.url


def digits(n: int) -> str:
    """Contact ``n``'s mobile number: Polish mobiles (48 50x), which enqueue validation accepts."""
    return f"4850{n:07d}"


def wait(check: Callable[[], bool], timeout: float, what: str | None) -> None:
    """Poll ``check`` until true; past ``timeout`` s raise TimeoutError (``what`` None: return)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            if what is None:
                return
            raise TimeoutError(f"no sign of {what} within {timeout:g} s")
        time.sleep(POLL_SECONDS)


def pid_of(worker: ManagedProcess) -> int:
    """The pid of a started worker."""
    assert worker.process is not None
    return worker.process.pid


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process (all its threads) from /proc/<pid>/stat."""
    # The command name may hold spaces and parentheses: the fields start after the last ")".
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / CLOCK_TICKS


@contextlib.contextmanager
def counting_round_trips() -> Iterator[mock.MagicMock]:
    """Count sends to Redis in this process: one per command, one per pipeline."""
    original = AbstractConnection.send_packed_command
    with mock.patch.object(
        AbstractConnection, "send_packed_command", autospec=True, side_effect=original
    ) as spy:
        yield spy


def _chain_sender(
    first: Any, second: Any, tag: str, recipients: list[int]
) -> Callable[[int], None]:
    """Publish ``first -> second`` for message n with the arguments the pipeline's chain carries."""

    def send(n: int) -> None:
        data = {
            "message_id": MESSAGE_ID,
            "identifier": {"type": "MOBILE", "value": digits(recipients[n])},
            "parameters": [],
        }
        key, task_ids = f"{tag}-{n}", [uuid(), uuid()]
        chain(
            first.s(data, key, task_ids).set(task_id=task_ids[0]),
            second.s(data, key, task_ids).set(task_id=task_ids[1]),
        ).apply_async()

    return send
