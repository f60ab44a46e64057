"""How ``make bench`` prints: the machine, each run, phase titles and the final table."""

from __future__ import annotations

import contextlib
import os
import platform
import time
from pathlib import Path

import celery
import kombu
import redis

from benchmarks.harness import Row, Run, cpu_seconds


def title(text: str) -> None:
    """A phase's heading."""
    print(f"\n== {text}", flush=True)


def show_run(name: str, run: Run) -> None:
    """One measured batch on one line."""
    print(
        f"  {name}: {run.messages} in {run.elapsed:.2f} s = {run.rate:.1f} msg/s; "
        f"worker CPU {run.worker_cpu:.2f} s ({run.ms_per_message(run.worker_cpu):.2f} ms/msg, "
        f"{run.worker_load:.0%} of a core); enqueue {run.enqueue_wall:.2f} s wall, "
        f"{run.ms_per_message(run.enqueue_cpu):.3f} ms CPU/msg; "
        f"Redis CPU {run.ms_per_message(run.redis_cpu):.2f} ms/msg; sandbox and enqueuer "
        f"{run.ms_per_message(run.bench_cpu):.2f} ms/msg; {run.machine_load:.2f} cores busy",
        flush=True,
    )


def per_message(run: Run) -> str:
    """The twelve commonest Redis commands of a run, per message."""
    top = sorted(run.commandstats.items(), key=lambda item: -item[1])
    return ", ".join(f"{name} {calls / run.messages:.2f}" for name, calls in top[:12])


def machine(db: redis.Redis) -> list[str]:
    """The processor, load, versions and OS the figures were measured on."""
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


def busy_processes(interval: float = 1.0, threshold: float = 0.10) -> list[str]:
    """Processes (other than this one) using more than ``threshold`` of a core right now."""

    def sample() -> dict[int, tuple[str, float]]:
        found = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            with contextlib.suppress(OSError, IndexError, ValueError):
                raw = (entry / "stat").read_text()
                name = raw[raw.index("(") + 1 : raw.rindex(")")]
                found[int(entry.name)] = (name, cpu_seconds(int(entry.name)))
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


def print_table(rows: list[Row]) -> None:
    """Every row of the run: figure, value, target and PASS or MISS."""
    width = max(len(r.figure) for r in rows)
    value_width = max(len(r.value) for r in rows)
    target_width = max(len(r.target) for r in rows)
    print(f"\n{'figure':<{width}}  {'value':<{value_width}}  {'target':<{target_width}}  result")
    print("-" * (width + value_width + target_width + 12))
    for r in rows:
        print(
            f"{r.figure:<{width}}  {r.value:<{value_width}}  {r.target:<{target_width}}  {r.result}"
        )
