"""``make failover``: sends while the Redis primary of a Sentinel set is killed, three times.

A set of the run's own on free loopback ports (a primary, 2 replicas, 3 sentinels), the sandbox
as Engage, 2 workers on ``sentinel://``. While 1,000 sends are enqueued, the primary is
SIGKILLed three times; each time the sentinels promote a replica and the old primary rejoins as
a replica. ``--lag``: every replication link passes through a proxy that holds the bytes 5-20 ms
(200-250 ms in the control run) and dies with its server (a host crash: what was in flight to
the replicas is lost).

Prints failovers and their durations, Engage calls, duplicates (counted by the sandbox per
message and recipient), lost (not final at the end, or dead-lettered ``outcome_unknown`` though
its request never reached Engage), ``outcome_unknown``, sends held back for
want of replica acks, enqueue and enqueue-to-sent p50/p99, and the longest time from a kill to
every send that was unfinished then being final. Exits 1 unless duplicates and lost are 0 (with
``--expect-duplicates``, the control run with ``--acks 0``: unless duplicates are above 0).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from tasks.cli.local_stack import ManagedProcess, celery_worker, start_worker
from tasks.cli.sentinel_set import MASTER_NAME, SentinelSet
from tasks.core.errors import ServiceUnavailable
from tasks.sandbox import Sandbox, SandboxState

USER, PASSWORD = "api@example.com", "sandbox-password"
MESSAGE_ID = 555
FIRST_CONTACT_ID = 100_000
#: Replication held back this long (s) in the lag mode: milliseconds between hosts.
LAG = (0.005, 0.020)
#: In the control run (``--expect-duplicates``) longer: the kill then lands before the held
#: send's lease reaches a replica however slowly a loaded machine runs the drill.
CONTROL_LAG = (0.200, 0.250)
#: As the README's Sentinel example, but failing over within a second or two.
SERVER_OPTIONS = ("--min-replicas-to-write", "1", "--min-replicas-max-lag", "10")
WORKER_ENV = {
    "ENGAGE_USERNAME": USER,
    "ENGAGE_PASSWORD": PASSWORD,
    "ENGAGE_KEY_PREFIX": "failover",
    "ENGAGE_REDIS_MASTER_NAME": MASTER_NAME,
    "ENGAGE_CONNECT_TIMEOUT": "1",
    "ENGAGE_READ_TIMEOUT": "10",
    "ENGAGE_LEASE_MARGIN": "1",
    "ENGAGE_RETRY_BASE_DELAY": "0.2",
    "ENGAGE_RETRY_BACKOFF": "2",
    "ENGAGE_RETRY_MAX_DELAY": "2",
    "ENGAGE_RETRY_MAX_ATTEMPTS": "6",
    "ENGAGE_RETRY_MAX_TOTAL": "120",
    # Long: a message lost in the failover must come back through the failover watch, not this.
    "ENGAGE_VISIBILITY_TIMEOUT": "600",
    "ENGAGE_SWEEP_INTERVAL": "2",
    "ENGAGE_RATE_LIMIT": "0",
    "ENGAGE_REPLICA_ACK_TIMEOUT": "500",
}
FINAL = ("sent", "dead_lettered")
#: Seconds without any send becoming final after which the rest count as lost (longer than a
#: lease plus a sweep: a stuck send would have been dead-lettered by then).
STALLED = 30.0
#: Longest answer time of the sandbox (s): a send's call is under way when the primary dies.
ENGAGE_LATENCY = 0.02
#: How long Engage holds the send under way when the primary is killed (s): within the read
#: timeout, longer than a failover and the recovery that follows it.
HELD_SEND = 8.0
#: A kill waits until Engage received this many sends within FLOW_WINDOW seconds.
FLOW_SENDS = 10
FLOW_WINDOW = 0.25
#: The sentinels' down-after-milliseconds: a drill's failover in about 1.5 s.
DOWN_AFTER_MS = 500


def main() -> int:
    """Run the drill and print its figures."""
    args = _arguments()
    rng = random.Random(args.seed)
    run_dir = Path(".run") / "failover"
    shutil.rmtree(run_dir, ignore_errors=True)
    servers = SentinelSet(
        run_dir / "redis",
        lag=_lag(args),
        server_options=SERVER_OPTIONS,
        down_after_ms=DOWN_AFTER_MS,
    )
    state = SandboxState(username=USER, password=PASSWORD, messages=())
    state.add_messages([{"messageId": MESSAGE_ID}])
    mobiles = [f"4860{n:07d}" for n in range(args.sends)]
    state.add_contacts(
        {"type": "MOBILE", "value": m, "contactId": FIRST_CONTACT_ID + n}
        for n, m in enumerate(mobiles)
    )
    # Engage answers in up to ENGAGE_LATENCY s: sends are in flight when the primary goes.
    state.set_faults({"random": {"latency_max": ENGAGE_LATENCY, "seed": args.seed}})
    sandbox = Sandbox(state).start()
    workers: list[ManagedProcess] = []
    try:
        servers.start()
        env = {
            **os.environ,
            **WORKER_ENV,
            "ENGAGE_BROKER_URL": servers.url,
            "ENGAGE_BASE_URL": sandbox.base_url,
            "ENGAGE_REPLICA_ACKS": str(args.acks),
        }
        os.environ.update(env)
        for number in range(2):
            log = run_dir / f"worker-{number}.log"
            workers.append(start_worker(celery_worker(env, log, name=f"failover{number}")))
        return _drill(args, rng, servers, state, workers)
    finally:
        for worker in workers:
            worker.stop()
        servers.stop()
        sandbox.stop()


def _lag(args: argparse.Namespace) -> tuple[float, float] | None:
    """How long the replication proxy holds bytes (s), or None without ``--lag``."""
    if not args.lag:
        return None
    return CONTROL_LAG if args.expect_duplicates else LAG


def _drill(
    args: argparse.Namespace,
    rng: random.Random,
    servers: SentinelSet,
    sandbox: SandboxState,
    workers: list[ManagedProcess],
) -> int:
    from tasks.api import send_prepared_sms  # noqa: PLC0415  (after the environment is set)
    from tasks.delivery.runtime import current_runtime  # noqa: PLC0415
    from tasks.worker.app import engage_settings  # noqa: PLC0415

    rt = current_runtime(engage_settings())
    keys = [f"failover-{n}" for n in range(args.sends)]
    enqueue = Enqueuer(send_prepared_sms, keys, pace=args.enqueue_seconds / args.sends)
    started = time.time()
    thread = threading.Thread(target=enqueue.run, daemon=True)
    thread.start()
    kills: list[tuple[float, list[str]]] = []
    failovers: list[float] = []
    for number in range(args.kills):
        time.sleep(rng.uniform(1.0, 3.0))
        _wait_for_sends_in_flow(sandbox)
        unfinished = _unfinished(rt, enqueue.done_keys())
        old = servers.primary()
        _hold_the_next_send(sandbox, args.seed)
        killed_at = time.time()
        servers.kill_primary()
        kills.append((killed_at, unfinished))
        seconds = servers.wait_for_failover(old.public_port)
        failovers.append(seconds)
        print(
            f"kill -9 #{number + 1} of the primary: new primary after {seconds:.2f} s "
            f"({len(unfinished)} sends unfinished at the kill)",
            flush=True,
        )
        servers.restart(old)
    thread.join()
    records = _wait_until_final(rt, keys, args.timeout)
    elapsed = time.time() - started
    held_back = sum(w.log_text().count('"event": "held_back"') for w in workers)
    return _report(
        args,
        records,
        sandbox,
        enqueue=enqueue,
        kills=kills,
        failovers=failovers,
        held_back=held_back,
        elapsed=elapsed,
    )


def _wait_for_sends_in_flow(sandbox: SandboxState, timeout: float = 30.0) -> None:
    """Until Engage gets sends at full pace: the kill then cuts sends off mid-way."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = len(sandbox.calls_to("message/sendSingle"))
        time.sleep(FLOW_WINDOW)
        if len(sandbox.calls_to("message/sendSingle")) - before >= FLOW_SENDS:
            return


def _hold_the_next_send(sandbox: SandboxState, seed: int) -> None:
    """Let Engage hold the next send HELD_SEND s, and return as soon as it arrived.

    Its lease was taken a moment ago, so no replica has it yet unless the lease waited for one
    (``ENGAGE_REPLICA_ACKS``); the primary dies while Engage works on it, as it would while
    Engage takes its time (it asks clients for timeouts above 30 s).
    """
    before = len(sandbox.calls_to("message/sendSingle"))
    sandbox.set_faults(
        {
            "script": {"message/sendSingle": [f"delay:{HELD_SEND}"]},
            "random": {"latency_max": ENGAGE_LATENCY, "seed": seed},
        }
    )
    deadline = time.monotonic() + 30
    while len(sandbox.calls_to("message/sendSingle")) == before and time.monotonic() < deadline:
        time.sleep(0.0005)


class Enqueuer:
    """Enqueues every key at a steady pace; a refused enqueue is retried with the same key."""

    def __init__(self, send: Any, keys: list[str], *, pace: float) -> None:
        self._send = send
        self._keys = keys
        self._pace = pace
        self.latencies: list[float] = []
        self.refused = 0
        #: Errors other than ServiceUnavailable, by type: none expected.
        self.errors: Counter[str] = Counter()
        self._done: list[str] = []
        self._lock = threading.Lock()

    def run(self) -> None:
        """Enqueue every key, in order."""
        next_at = time.monotonic()
        for n, key in enumerate(self._keys):
            next_at += self._pace
            time.sleep(max(0.0, next_at - time.monotonic()))
            while True:
                began = time.perf_counter()
                try:
                    self._send(MESSAGE_ID, mobile=f"+4860{n:07d}", idempotency_key=key)
                except ServiceUnavailable:
                    self.refused += 1  # as a web app would: try again with the same key
                    time.sleep(0.05)
                    continue
                except Exception as err:  # counted and shown: none expected
                    self.errors[type(err).__name__] += 1
                    time.sleep(0.05)
                    continue
                self.latencies.append(time.perf_counter() - began)
                break
            with self._lock:
                self._done.append(key)

    def done_keys(self) -> list[str]:
        """The keys enqueued so far."""
        with self._lock:
            return list(self._done)


def _final_at(record: dict[str, Any], fallback: float) -> float:
    """When a record last changed: a slim final record keeps ``sent_at``, not ``updated_at``."""
    when = record.get("updated_at") or record.get("sent_at")
    return float(when) if when else fallback


def _unfinished(rt: Any, keys: list[str]) -> list[str]:
    pipe = rt.redis.pipeline(transaction=False)
    for key in keys:
        pipe.hget(rt.keys.send(key), "state")
    states = pipe.execute()
    return [k for k, s in zip(keys, states, strict=True) if s is None or s.decode() not in FINAL]


def _wait_until_final(rt: Any, keys: list[str], timeout: float) -> dict[str, dict[str, str]]:
    """Every record, once all are final, or nothing moved for STALLED s, or at ``timeout``."""
    deadline = time.monotonic() + timeout
    last: list[str] = []
    moved_at = time.monotonic()
    while True:
        try:
            records = {k: rt.ledger.record(k) for k in keys}
        except Exception:  # Redis in a failover: look again
            time.sleep(0.5)
            continue
        pending = [k for k, r in records.items() if r.get("state") not in FINAL]
        if pending != last:
            last, moved_at = pending, time.monotonic()
        now = time.monotonic()
        if not pending or now > deadline or now - moved_at > STALLED:
            return records
        time.sleep(0.5)


def _unknown_never_called(records: dict[str, dict[str, str]], sandbox: SandboxState) -> list[str]:
    """Keys dead-lettered ``outcome_unknown`` with no sendSingle call for their contact."""
    called = {
        int(recipient)
        for call in sandbox.calls_to("message/sendSingle")
        if (recipient := call.query.get("recipientId", "")).isdigit()
    }
    return [
        key
        for key, record in records.items()
        if record.get("reason") == "outcome_unknown"
        and FIRST_CONTACT_ID + int(key.rsplit("-", 1)[1]) not in called
    ]


def _percentiles(values: list[float]) -> str:
    if len(values) < 2:
        return "n/a"
    cuts = statistics.quantiles(values, n=100)
    return f"p50 {cuts[49] * 1000:.1f} ms, p99 {cuts[98] * 1000:.1f} ms"


def _report(
    args: argparse.Namespace,
    records: dict[str, dict[str, str]],
    sandbox: SandboxState,
    *,
    enqueue: Enqueuer,
    kills: list[tuple[float, list[str]]],
    failovers: list[float],
    held_back: int,
    elapsed: float,
) -> int:
    final = Counter(r.get("state", "missing") for r in records.values())
    dead = [r for r in records.values() if r.get("state") == "dead_lettered"]
    reasons = Counter(r.get("reason") for r in dead)
    sends = dict(sandbox.sends)
    duplicates = sum(n - 1 for n in sends.values() if n > 1)
    unfinished = sum(1 for r in records.values() if r.get("state") not in FINAL)
    # No worker dies in this drill: an outcome_unknown whose request never reached Engage was
    # given up though provably unsent, i.e. lost.
    never_called = _unknown_never_called(records, sandbox)
    lost = unfinished + len(never_called)
    to_sent = [
        float(r["sent_at"]) - float(r.get("queued_at") or r["created_at"])
        for r in records.values()
        if r.get("state") == "sent"
    ]
    recovery = [
        max((_final_at(records[k], killed_at) for k in unfinished), default=killed_at) - killed_at
        for killed_at, unfinished in kills
    ]
    stats = sandbox.stats()
    held = _lag(args)
    mode = (
        "no lag"
        if held is None
        else f"lag {held[0] * 1000:.0f}-{held[1] * 1000:.0f} ms through a proxy"
    )
    print()
    print(f"mode:                  {mode}; ENGAGE_REPLICA_ACKS={args.acks}")
    print(f"sends:                 {args.sends}; 2 workers on sentinel://; 2 replicas, 3 sentinels")
    print(f"failovers:             {len(failovers)} ({', '.join(f'{s:.2f} s' for s in failovers)})")
    print(f"elapsed:               {elapsed:.1f} s")
    print(f"Engage calls:          {stats['calls']} {stats['calls_by_operation']}")
    print(f"sent:                  {final['sent']}")
    print(f"dead-lettered:         {final['dead_lettered']} {dict(sorted(reasons.items()))}")
    print(f"outcome_unknown:       {reasons.get('outcome_unknown', 0)}")
    print(f"held back (acks):      {held_back}")
    print(
        f"enqueue:               {_percentiles(enqueue.latencies)}; ServiceUnavailable "
        f"{enqueue.refused}x, other errors {dict(enqueue.errors) or 0}"
    )
    print(f"enqueue to sent:       {_percentiles(to_sent)}")
    print(f"kill to all final:     longest {max(recovery, default=0.0):.2f} s")
    print(f"duplicates:            {duplicates}")
    pending = [
        f"{k}:{r.get('state', 'missing')}"
        for k, r in records.items()
        if r.get("state") not in FINAL
    ]
    print(
        f"lost:                  {lost} (unfinished {unfinished}, outcome_unknown never sent "
        f"{len(never_called)}) {(pending + never_called)[:5] or ''}"
    )
    if args.expect_duplicates:
        ok = duplicates > 0
        print("RESULT:", "OK (the drill sees duplicates without acks)" if ok else "FAILED")
    else:
        ok = duplicates == 0 and lost == 0
        print("RESULT:", "OK" if ok else "FAILED")
    return 0 if ok else 1


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sends", type=int, default=1000)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--lag", action="store_true", help="replication through a lag proxy")
    parser.add_argument("--acks", type=int, default=1, help="ENGAGE_REPLICA_ACKS")
    parser.add_argument("--expect-duplicates", action="store_true", help="the control run")
    parser.add_argument("--enqueue-seconds", type=float, default=25.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=180.0)
    return parser.parse_args()


if __name__ == "__main__":
    sys.exit(main())
