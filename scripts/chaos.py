"""``make chaos``: many sends through a misbehaving Engage while the worker is SIGKILLed.

The sandbox answers with random 5xx, dropped connections, redirects to a login page, HTML pages
and malformed contact ids, and once a window of 429s with ``Retry-After: 0``; the worker is
SIGKILLed and restarted; Redis (a server of this run's own, data kept on disk) is stopped for
10 s and started again. No beat runs: the workers' own
sweep is all the recovery there is. Prints sent, dead-lettered by reason, duplicates (counted by
the sandbox per message and recipient) and lost (not final at the end). Exits 1 unless
duplicates, lost and "marked sent, never sent" are all 0.

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

from chaos_deployments import SecondDeployment, ledger_restart_drill

from tasks.cli.local_stack import celery_worker, start_worker
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
    server = RedisServer(log_dir / "chaos-redis").start()
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
        "REDIS_URL": server.url,
        "ENGAGE_BASE_URL": sandbox.base_url,
    }
    os.environ.update(env)
    from tasks.api import delivery_status, send_prepared_sms  # noqa: PLC0415  (after env)

    second = SecondDeployment(env, state, log_dir).start(mobiles)
    worker = start_worker(celery_worker(env, log_dir / "chaos-worker.log", name="chaos"))
    started = time.monotonic()
    keys = [f"chaos-{n}" for n in range(args.sends)]
    duplicates_enqueued = _enqueue_all(send_prepared_sms, mobiles, keys, rng)
    print(f"enqueued {args.sends} sends (+{duplicates_enqueued} duplicate enqueues)", flush=True)

    kills = 0
    outage_after = args.kills // 2
    while kills < args.kills:
        time.sleep(rng.uniform(1.5, 4.0))
        worker.kill()
        kills += 1
        print(f"SIGKILL #{kills} of the worker; restarting", flush=True)
        worker = start_worker(celery_worker(env, log_dir / "chaos-worker.log", name="chaos"))
        if kills == 1:
            _rate_limited_window(state, plan)
        if kills == outage_after:
            time.sleep(1.0)
            print(f"Redis stopped for {REDIS_OUTAGE:.0f} s", flush=True)
            server.outage(REDIS_OUTAGE)
            print("Redis back", flush=True)

    states = _wait_until_final(delivery_status, keys, args.timeout)
    elapsed = time.monotonic() - started
    crossing_lines, crossing_ok = second.finish(args.timeout)
    drill_lines, drill_ok = ledger_restart_drill(env, log_dir, args.timeout)
    worker.stop()
    server.stop()
    sandbox.stop()
    code = _report(states, state, keys=keys, unknown=unknown, elapsed=elapsed, kills=kills)
    print("\n".join(["", *crossing_lines, *drill_lines]))
    held = crossing_ok and drill_ok
    print(
        "RESULT (deployments, dead-letter bound, cancel, ledger restart):",
        "OK" if held else "FAILED",
    )
    return code if held else 1


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
