"""``make chaos``: many sends through a misbehaving Engage while the worker is SIGKILLed.

The sandbox answers with random 5xx, dropped connections, redirects to a login page, HTML pages,
malformed contact ids and answers trickled past the lease, and once a window of 429s with
``Retry-After: 0``; the worker is SIGKILLed and restarted; Redis (the broker and the ledger,
servers of this run's own, data kept on disk) is stopped for 10 s and started again, and the
ledger answers READONLY for a few seconds; two more workers run with their clocks 120 s ahead
and behind; the first sends wait past the visibility timeout before any worker runs
(``chaos_infra``). No beat runs: the workers' own sweep is all the recovery there is. Prints
sent, dead-lettered by reason, duplicates (counted by the sandbox per message and recipient),
lost (not final at the end), outcome_unknown not explained by a fault the run injected, and
completion callbacks missing. Exits 1 unless all of those and "marked sent, never sent" are 0.

In the same run (``scripts/chaos_deployments.py``): a second deployment on the same Redis sending
at the same time (0 cross-sends), its dead-letter store at a small bound, a cancel of its queued
batch, and a ledger Redis restarted without persistence (callbacks published = sends final).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import chaos_infra
from chaos_deployments import SecondDeployment, ledger_restart_drill

from tasks.cli.local_stack import ManagedProcess, celery_worker, start_worker
from tasks.cli.redis_server import RedisServer
from tasks.sandbox import Sandbox, SandboxState

USER, PASSWORD = "api@example.com", "sandbox-password"
MESSAGE_ID = 555
#: Seconds Redis is away once during the run.
REDIS_OUTAGE = 10.0
FIRST_CONTACT_ID = 100_000
#: Calls answered 429 with ``Retry-After: 0`` in one window (Engage asking to slow down, with no
#: wait given): each send meets at most TOLD_WAIT_MAX_CALLS of them, a floor apart.
RATE_LIMITED_CALLS = 300
WORKER_ENV = {
    "ENGAGE_USERNAME": USER,
    "ENGAGE_PASSWORD": PASSWORD,
    "ENGAGE_KEY_PREFIX": "chaos",
    "ENGAGE_CONNECT_TIMEOUT": "1",
    "ENGAGE_READ_TIMEOUT": "2",
    "ENGAGE_LEASE_MARGIN": "1",
    "ENGAGE_RETRY_BASE_DELAY": "0.2",
    "ENGAGE_RETRY_BACKOFF": "2",
    "ENGAGE_RETRY_MAX_DELAY": "2",
    "ENGAGE_RETRY_MAX_ATTEMPTS": "6",
    "ENGAGE_RETRY_MAX_TOTAL": "120",
    "ENGAGE_UNKNOWN_RECIPIENT_DELAY": "0.2",
    "ENGAGE_VISIBILITY_TIMEOUT": "10",
    # The workers' sweep replaces beat: every 2 s, one worker at a time.
    "ENGAGE_SWEEP_INTERVAL": "2",
    # Exercised but not the bottleneck: this run is about correctness, not the budget.
    "ENGAGE_RATE_LIMIT": "200",
    "ENGAGE_RATE_BURST": "20",
}


def main() -> int:
    """Run the chaos scenario and print its figures."""
    args = _arguments()
    rng = random.Random(args.seed)
    log_dir = Path(".run")
    shutil.rmtree(log_dir / "chaos-redis", ignore_errors=True)
    shutil.rmtree(log_dir / "chaos-ledger", ignore_errors=True)
    server = RedisServer(log_dir / "chaos-redis").start()
    ledger = RedisServer(log_dir / "chaos-ledger").start()
    state = SandboxState(username=USER, password=PASSWORD, messages=())
    state.add_messages([{"messageId": MESSAGE_ID}])
    mobiles = [f"4860{n:07d}" for n in range(args.sends)]
    unknown = set(rng.sample(range(args.sends), k=args.sends // 20))
    state.add_contacts(
        {"type": "MOBILE", "value": m, "contactId": FIRST_CONTACT_ID + n}
        for n, m in enumerate(mobiles)
        if n not in unknown
    )
    sandbox = Sandbox(state).start()
    plan = {
        "random": {
            "server_error": 0.08,
            "drop_before": 0.01,
            "drop_after": 0.01,
            "redirect": 0.01,
            "html": 0.01,
            "bad_contact_id": 0.01,
            "trickle": 0.005,
            "trickle_seconds": chaos_infra.TRICKLE_SECONDS,
            "latency_max": 0.05,
            "seed": args.seed,
        }
    }
    state.set_faults(plan)
    env = {
        **os.environ,
        **WORKER_ENV,
        # Both named: a shell's ENGAGE_BROKER_URL or REDIS_URL must not redirect the run.
        "ENGAGE_BROKER_URL": server.url,
        "REDIS_URL": ledger.url,
        "ENGAGE_BASE_URL": sandbox.base_url,
        "ENGAGE_ON_DONE_TASK": chaos_infra.CALLBACK_TASK,
        "ENGAGE_ON_DONE_QUEUE": chaos_infra.CALLBACK_QUEUE,
    }
    os.environ.update(env)
    from tasks.api import delivery_status, send_prepared_sms  # noqa: PLC0415  (after env)

    started = time.monotonic()
    keys = [f"chaos-{n}" for n in range(args.sends)]
    # The first tenth waits, with no worker running, past the visibility timeout.
    early = chaos_infra.enqueue_and_wait(
        send_prepared_sms, MESSAGE_ID, mobiles, keys[: args.sends // 10], WORKER_ENV
    )
    # The second deployment sends beside this one (same Redis, its own prefix and tenant).
    second = SecondDeployment(env, state, log_dir).start(mobiles)
    worker = start_worker(celery_worker(env, log_dir / "chaos-worker.log", name="chaos"))
    skewed = chaos_infra.start_skewed_workers(env, log_dir)
    kill_log = chaos_infra.KillLog()
    duplicates_enqueued = _enqueue_all(send_prepared_sms, mobiles, keys, rng)
    print(f"enqueued {args.sends} sends (+{duplicates_enqueued} duplicate enqueues)", flush=True)

    kills = args.kills
    worker = _kill_and_restart(
        worker,
        kills,
        rng,
        env,
        log_dir,
        kill_log,
        lambda: _after_the_first_restart(state, plan, ledger),
        [server, ledger],
    )

    states = _wait_until_final(delivery_status, keys, args.timeout)
    elapsed = time.monotonic() - started
    callbacks_left = chaos_infra.wait_for_callbacks(ledger.url, WORKER_ENV["ENGAGE_KEY_PREFIX"], 90)
    other_lines, other_ok = _other_deployments(second, env, log_dir, args.timeout)
    for process in [worker, *skewed]:
        process.stop()
    infra_ok = chaos_infra.report(
        states,
        state,
        contact_of={k: FIRST_CONTACT_ID + n for n, k in enumerate(keys)},
        kills=kill_log,
        worker_env=WORKER_ENV,
        broker_url=server.url,
        log_dir=log_dir,
        early=len(early),
        callbacks_left=callbacks_left,
    )
    for stopped in (server, ledger, sandbox):
        stopped.stop()
    failed = _report(states, state, keys=keys, unknown=unknown, elapsed=elapsed, kills=kills)
    held = _print_other_deployments(other_lines, other_ok)
    return failed or (0 if infra_ok and held else 1)


def _other_deployments(
    second: SecondDeployment, env: dict[str, str], log_dir: Path, timeout: float
) -> tuple[list[str], bool]:
    """Finish the second deployment, then run the ledger-restart drill: lines, and if both held."""
    crossing_lines, crossing_ok = second.finish(timeout)
    drill_lines, drill_ok = ledger_restart_drill(env, log_dir, timeout)
    return [*crossing_lines, *drill_lines], crossing_ok and drill_ok


def _print_other_deployments(lines: list[str], held: bool) -> bool:
    print("\n".join(["", *lines]))
    print(
        "RESULT (deployments, dead-letter bound, cancel, ledger restart):",
        "OK" if held else "FAILED",
    )
    return held


def _kill_and_restart(  # noqa: PLR0917  (the run's pieces)
    worker: ManagedProcess,
    kills: int,
    rng: random.Random,
    env: dict[str, str],
    log_dir: Path,
    kill_log: chaos_infra.KillLog,
    after_first: Callable[[], None],
    servers: list[RedisServer],
) -> ManagedProcess:
    """SIGKILL the worker ``kills`` times, restarting it; Redis away once halfway."""
    outage_after = kills // 2
    for n in range(1, kills + 1):
        time.sleep(rng.uniform(1.5, 4.0))
        worker.kill()
        kill_log.killed()
        print(f"SIGKILL #{n} of the worker; restarting", flush=True)
        worker = start_worker(celery_worker(env, log_dir / "chaos-worker.log", name="chaos"))
        if n == 1:
            after_first()
        if n == outage_after:
            time.sleep(1.0)
            print(f"Redis stopped for {REDIS_OUTAGE:.0f} s", flush=True)
            _outage(servers, REDIS_OUTAGE)
            print("Redis back", flush=True)
    return worker


def _outage(servers: list[RedisServer], seconds: float) -> None:
    """Stop every server, stay away ``seconds``, start them again with their data."""
    for server in servers:
        server.stop()
    time.sleep(seconds)
    for server in servers:
        server.start()


def _after_the_first_restart(
    state: SandboxState, plan: dict[str, Any], ledger: RedisServer
) -> None:
    """A window of 429s with ``Retry-After: 0``, then one of READONLY answers from the ledger."""
    _rate_limited_window(state, plan)
    chaos_infra.readonly_window(ledger)


def _rate_limited_window(state: SandboxState, plan: dict[str, Any]) -> None:
    """The next RATE_LIMITED_CALLS calls are answered 429 with ``Retry-After: 0``; then the plan."""
    state.set_faults({**plan, "script": {"*": ["retry_after:0"] * RATE_LIMITED_CALLS}})
    print(f"the next {RATE_LIMITED_CALLS} calls answered 429, Retry-After: 0", flush=True)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sends", type=int, default=1000)
    parser.add_argument("--kills", type=int, default=4)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=300.0)
    return parser.parse_args()


Status = dict[str, Any]


def _enqueue_all(
    send: Callable[..., object], mobiles: list[str], keys: list[str], rng: random.Random
) -> int:
    """Enqueue every send; 10% twice more from racing threads (a retried web request)."""
    repeated = rng.sample(range(len(keys)), k=len(keys) // 10)

    def enqueue(n: int) -> None:
        send(MESSAGE_ID, mobile=f"+{mobiles[n]}", idempotency_key=keys[n])

    for n in range(len(keys)):
        enqueue(n)
    threads = [threading.Thread(target=enqueue, args=(n,)) for n in repeated for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(threads)


def _wait_until_final(
    status_of: Callable[[str], Status], keys: list[str], timeout: float
) -> dict[str, Status]:
    deadline = time.monotonic() + timeout
    while True:
        states = {k: status_of(k) for k in keys}
        pending = [k for k, s in states.items() if s["state"] not in ("sent", "dead_lettered")]
        if not pending or time.monotonic() > deadline:
            return states
        time.sleep(1.0)


def _report(
    states: dict[str, Status],
    sandbox: SandboxState,
    *,
    keys: list[str],
    unknown: set[int],
    elapsed: float,
    kills: int,
) -> int:
    final = Counter(s["state"] for s in states.values())
    reasons = Counter(s.get("reason") for s in states.values() if s["state"] == "dead_lettered")
    sends = dict(sandbox.sends)
    duplicates = sum(n - 1 for n in sends.values() if n > 1)

    def sent_by_engage(key: str) -> bool:
        return sends.get((MESSAGE_ID, FIRST_CONTACT_ID + int(key.split("-")[1])), 0) > 0

    phantom = sum(1 for k in keys if states[k]["state"] == "sent" and not sent_by_engage(k))
    unknown_but_sent = sum(
        1 for k in keys if states[k].get("reason") == "outcome_unknown" and sent_by_engage(k)
    )
    pending = [k for k in keys if states[k]["state"] not in ("sent", "dead_lettered")]
    lost = len(pending)
    stats = sandbox.stats()
    print()
    print(f"sends:                 {len(keys)} ({len(unknown)} to unknown numbers)")
    print(f"worker SIGKILLs:       {kills}; Redis stopped once for {REDIS_OUTAGE:.0f} s; no beat")
    print(f"elapsed:               {elapsed:.1f} s")
    print(f"Engage calls:          {stats['calls']} {stats['calls_by_operation']}")
    print(f"answers by status:     {stats['answers']}")
    print(f"sent:                  {final['sent']}")
    print(f"dead-lettered:         {final['dead_lettered']} {dict(sorted(reasons.items()))}")
    print(f"  of which outcome_unknown but really sent: {unknown_but_sent}")
    print(f"duplicates:            {duplicates}")
    print(f"lost:                  {lost} {pending[:10] if pending else ''}")
    print(f"marked sent, never sent: {phantom}")
    ok = duplicates == 0 and lost == 0 and phantom == 0
    print("RESULT:", "OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
