"""``make chaos``'s infrastructure faults: clocks, a lost visibility timeout, trickled
answers, a READONLY ledger, and the checks that every ``outcome_unknown`` and every completion
callback is accounted for.

- Two more workers run throughout with their wall clock 120 s ahead and 120 s behind (the test
  hook in ``tests/support/skewed_clock``: their ``time.time()``, kombu's included, runs off).
- The first sends are enqueued while no worker runs and wait past the visibility timeout: the
  first worker's start-up sweep publishes copies while the originals are still queued.
- Some answers are trickled, one byte a second, past the lease: each call's deadline cuts them.
- The ledger lives in a Redis of its own (the broker in another), which is made a replica of a
  dead primary for a few seconds while sends are being recorded: every write answers READONLY.
- At the end, every ``outcome_unknown`` must be explained by what the sandbox and the run saw: a
  connection dropped or an answer trickled on that send's ``sendSingle``, or a worker killed
  while it was running it (during the call, or after a 204 while it still waited for Redis to
  take ``sent``, as its log shows); and the completion callbacks published are counted against
  the sends.
"""

from __future__ import annotations

import base64
import json
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import redis

from tasks.cli.local_stack import ManagedProcess, celery_worker, start_worker
from tasks.cli.redis_server import RedisServer
from tasks.sandbox.state import SandboxState

#: The wall-clock skews of the two extra workers (seconds).
SKEWS = (120.0, -120.0)
#: The hook that skews a Python process's clock (tests/support/skewed_clock/sitecustomize.py).
SKEW_HOOK = Path(__file__).resolve().parents[1] / "tests" / "support" / "skewed_clock"
#: How long the ledger answers READONLY.
READONLY_SECONDS = 4.0
#: Seconds between two bytes of a trickled answer: under the read timeout (2 s), so only the
#: call's deadline (3 s) can cut it, before the lease (4 s) lapses.
TRICKLE_SECONDS = 1.0
#: Completion callbacks go to this queue on the broker; nobody consumes it, the run counts it.
CALLBACK_TASK = "chaos.sms_finished"
CALLBACK_QUEUE = "chaos.callbacks"
#: sendSingle answers that leave the outcome unknown to the worker (the sandbox's call log).
UNKNOWN_ANSWERS = frozenset({"drop_before", "drop_after", "trickle"})


def skewed_env(env: dict[str, str], seconds: float) -> dict[str, str]:
    """``env`` for a worker whose wall clock runs ``seconds`` off."""
    path = os.pathsep.join(p for p in (str(SKEW_HOOK), env.get("PYTHONPATH", "")) if p)
    return {**env, "PYTHONPATH": path, "ENGAGE_TEST_CLOCK_SKEW": repr(seconds)}


def enqueue_and_wait(
    send: Callable[..., object],
    message_id: int,
    mobiles: list[str],
    keys: list[str],
    worker_env: Mapping[str, str],
) -> list[str]:
    """Enqueue ``keys`` (the first of ``mobiles``) with no worker, then wait out the visibility
    timeout: the first worker's start-up sweep takes them for lost and publishes copies."""
    for n, key in enumerate(keys):
        send(message_id, mobile=f"+{mobiles[n]}", idempotency_key=key)
    time.sleep(float(worker_env["ENGAGE_VISIBILITY_TIMEOUT"]) + 1)
    print(f"{len(keys)} sends waited past the visibility timeout with no worker", flush=True)
    return keys


def start_skewed_workers(env: dict[str, str], log_dir: Path) -> list[ManagedProcess]:
    """One worker per :data:`SKEWS`, its wall clock that far off; they run to the end."""
    return [
        start_worker(
            celery_worker(
                skewed_env(env, skew),
                log_dir / f"chaos-skewed{n}.log",
                name=f"skewed{n}",
                concurrency=8,
            )
        )
        for n, skew in enumerate(SKEWS)
    ]


def report(
    states: dict[str, dict[str, Any]],
    sandbox: SandboxState,
    *,
    contact_of: dict[str, int],
    kills: KillLog,
    worker_env: Mapping[str, str],
    broker_url: str,
    log_dir: Path,
    early: int,
    callbacks_left: int,
) -> bool:
    """Print this module's figures; True when every outcome_unknown and callback is accounted."""
    lease = sum(float(worker_env[f"ENGAGE_{part}"]) for part in LEASE_PARTS)
    # A second of slack: the sandbox logs a call a little after the lease was taken.
    recording = recording_waits(log_dir / "chaos-worker.log")
    unexplained = unexplained_unknowns(states, sandbox, contact_of, kills, lease + 1, recording)
    callbacks = callbacks_published(broker_url)
    missing = missing_callbacks(states, callbacks)
    skews = ", ".join(f"{s:+.0f} s" for s in SKEWS)
    print()
    print(f"clock-skewed workers:  {len(SKEWS)} ({skews}), running throughout")
    print(f"queued past the visibility timeout before any worker ran: {early}")
    print(f"answers trickled past the lease: {sandbox.stats()['answers'].get('trickle', 0)}")
    print(f"sent recorded through the READONLY window: {readonly_hits(log_dir)}")
    print(f"unexplained outcome_unknown: {len(unexplained)} {unexplained[:10] or ''}")
    for key in unexplained[:5]:  # what an operator would read to explain it
        calls = [
            (call.status, round(call.at, 2))
            for call in sandbox.calls_to("message/sendSingle")
            if call.query.get("recipientId") == str(contact_of[key])
        ]
        print(f"  {key}: {states[key].get('detail')!r}; sandbox calls {calls}")
    print(
        f"callbacks published:   {len(callbacks)} for {len(states)} sends; sends without one "
        f"for their final state: {len(missing)} {missing[:10] or ''} (outbox left: "
        f"{callbacks_left})"
    )
    return not unexplained and not missing


#: The parts of the send lease: connect + read timeout (the call's deadline) and the margin.
LEASE_PARTS = ("CONNECT_TIMEOUT", "READ_TIMEOUT", "LEASE_MARGIN")


def readonly_window(ledger: RedisServer, seconds: float = READONLY_SECONDS) -> None:
    """Make the ledger's Redis a replica of a primary that does not exist, then a primary again.

    A replica keeps its data while it cannot reach its primary, and refuses every write with
    READONLY: what a managed Redis behind one DNS name does for a moment after a failover.
    """
    print(f"ledger READONLY for {seconds:.0f} s", flush=True)
    client = redis.Redis.from_url(ledger.url)
    client.replicaof("127.0.0.1", "9")
    time.sleep(seconds)
    client.replicaof("no", "one")


@dataclass
class KillLog:
    """When each worker was SIGKILLed (this machine's clock, like the sandbox's call log)."""

    times: list[float] = field(default_factory=list)

    def killed(self) -> None:
        """Record a kill now."""
        self.times.append(time.time())

    def during(self, started: float, lease: float) -> bool:
        """A worker was killed while a call started at ``started`` could still hold its lease."""
        return any(started <= t <= started + lease for t in self.times)


def unexplained_unknowns(  # noqa: PLR0917  (everything the run saw)
    states: dict[str, dict[str, Any]],
    sandbox: SandboxState,
    contact_of: dict[str, int],
    kills: KillLog,
    lease: float,
    recording: set[str],
) -> list[str]:
    """Keys dead-lettered ``outcome_unknown`` that nothing the run saw explains.

    A kill explains a key when it fell within the lease of its dead holder (the dead letter's
    detail says when that lease ran out; a worker killed after taking the lease but before its
    request reached the sandbox leaves no call) or within a lease after one of its calls.
    ``recording``: keys whose ``sent`` a killed worker was still waiting to record (Redis
    unavailable after the 204): a kill any time after their call explains them.
    """
    calls: dict[int, list[tuple[str, float]]] = {}
    for call in sandbox.calls_to("message/sendSingle"):
        recipient = call.query.get("recipientId", "")
        if recipient.isdigit():
            calls.setdefault(int(recipient), []).append((str(call.status), call.at))
    unexplained = []
    for key, status in states.items():
        if status.get("reason") != "outcome_unknown":
            continue
        seen = calls.get(contact_of[key], [])
        window = float("inf") if key in recording else lease
        if any(answer in UNKNOWN_ANSWERS or kills.during(at, window) for answer, at in seen):
            continue
        ran_out = re.search(r"ran out at (\S+?)\)", status.get("detail") or "")
        if ran_out and kills.during(datetime.fromisoformat(ran_out[1]).timestamp() - lease, lease):
            continue
        unexplained.append(key)
    return unexplained


def recording_waits(killed_worker_log: Path) -> set[str]:
    """Keys whose ``sent`` the (killed) worker had to wait for Redis to record."""
    text = killed_worker_log.read_text(errors="replace") if killed_worker_log.exists() else ""
    return set(re.findall(r"recording send (\S+) as sent: Redis unavailable", text))


def callbacks_published(broker_url: str) -> set[tuple[str, str]]:
    """(key, state) of every completion callback waiting in :data:`CALLBACK_QUEUE`."""
    client = redis.Redis.from_url(broker_url)
    found = set()
    for raw in client.lrange(CALLBACK_QUEUE, 0, -1):
        message = json.loads(raw)
        args, _, _ = json.loads(base64.b64decode(message["body"]))
        found.add((args[0]["key"], args[0]["state"]))
    return found


def missing_callbacks(
    states: dict[str, dict[str, Any]], published: Iterable[tuple[str, str]]
) -> list[str]:
    """Keys whose final state has no callback among those published."""
    got = set(published)
    return [key for key, status in states.items() if (key, status["state"]) not in got]


def wait_for_callbacks(ledger_url: str, prefix: str, timeout: float) -> int:
    """Wait until the callbacks outbox is empty (the sweep publishes what a worker left)."""
    client = redis.Redis.from_url(ledger_url)
    deadline = time.monotonic() + timeout
    while (left := int(client.zcard(f"{prefix}:callbacks"))) and time.monotonic() < deadline:
        time.sleep(1.0)
    return left


def readonly_hits(log_dir: Path) -> int:
    """Sends whose ``sent`` had to wait for Redis to take writes again (the workers' logs)."""
    marker = "as sent: Redis unavailable"
    return sum(
        path.read_text(errors="replace").count(marker) for path in log_dir.glob("chaos-*.log")
    )
