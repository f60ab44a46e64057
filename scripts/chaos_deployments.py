"""``make chaos``, nothing lost and nothing crossed: a second deployment and a ledger restart.

- **A second deployment** (prefix ``chaosb``, an Engage tenant of its own) on the chaos run's
  Redis, sending while the first one's worker is SIGKILLed and Redis is stopped. Each tenant
  knows the other deployment's people too, under ids of its own, so a task that crossed would
  really send: a cross-send is a tenant sending to someone of the other deployment. The second
  deployment's dead-letter store has a small bound (unknown numbers overfill it: every entry
  over the bound must still replay), and a queued bulk batch of it is cancelled by lane (none
  of the cancelled may reach its tenant).
- **A ledger Redis restarted without persistence** (prefix ``chaosc``, its ledger on a Redis of
  its own that keeps nothing): sends queued with a completion callback, the ledger restarted
  empty, then the worker started: callbacks published must equal sends final.

Each part returns its report lines and whether it held; ``scripts/chaos.py`` prints them.
"""

from __future__ import annotations

import base64
import json
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import redis
from celery import uuid

from tasks.cli.local_stack import ManagedProcess, celery_worker, start_worker
from tasks.cli.redis_server import RedisServer
from tasks.core.errors import ServiceUnavailable
from tasks.core.request import build_send_request
from tasks.core.send_options import Priority
from tasks.core.settings import load_settings
from tasks.delivery.runtime import Runtime
from tasks.sandbox import Sandbox, SandboxState
from tasks.state.enums import SendState
from tasks.worker import cancellation
from tasks.worker.publish import enqueue, publish

MESSAGE_ID = 555
PREFIX_B = "chaosb"
PREFIX_C = "chaosc"
TENANT_B = ("tenant-b@example.com", "tenant-b-password")
#: Second deployment: sends of its own, a bulk batch to cancel, unknown numbers for its store.
B_SENDS, B_BATCH, B_UNKNOWN = 200, 100, 30
#: Its dead-letter store's bound: B_UNKNOWN dead letters overfill it.
B_DLQ_BOUND = 10
#: Contact ids: each tenant's own people, and the other deployment's people as it knows them.
B_OWN, B_KNOWS_A, A_KNOWS_B = 500_000, 900_000, 800_000
#: Ledger-restart drill: sends queued with a callback before the ledger is lost.
C_SENDS = 50
C_OWN = 600_000
CALLBACK_TASK = "chaos.sms_finished"
FINAL = (SendState.SENT, SendState.DEAD_LETTERED, SendState.CANCELLED)


def _mobile(block: int, n: int) -> str:
    """A valid Polish mobile number of a block of its own (66: second deployment, 69: drill)."""
    return f"48{block}{n:07d}"


class SecondDeployment:
    """Deployment ``chaosb`` on the same Redis as the chaos run, sending at the same time."""

    def __init__(self, env: dict[str, str], a_state: SandboxState, log_dir: Path) -> None:
        self._env = env
        self._a_state = a_state
        self._log_dir = log_dir
        self.a_mobiles: list[str] = []
        self.mobiles = [_mobile(66, n) for n in range(B_SENDS + B_BATCH + B_UNKNOWN)]
        self.state = SandboxState(username=TENANT_B[0], password=TENANT_B[1], messages=())
        self.sandbox: Sandbox | None = None
        self.worker: ManagedProcess | None = None
        self.rt = Runtime.build(
            load_settings(
                {
                    **env,
                    "ENGAGE_KEY_PREFIX": PREFIX_B,
                    "ENGAGE_DLQ_MAX_ENTRIES": str(B_DLQ_BOUND),
                    "ENGAGE_ON_DONE_QUEUE": f"{PREFIX_B}.callbacks",
                }
            )
        )
        self.cancel_outcomes: dict[str, str] = {}
        self._enqueued = threading.Event()

    def start(self, a_mobiles: list[str]) -> SecondDeployment:
        """Start its tenant and worker; enqueue its sends and cancel its batch (a thread)."""
        self.a_mobiles = a_mobiles
        known = self.mobiles[: B_SENDS + B_BATCH]
        self.state.add_messages([{"messageId": MESSAGE_ID}])
        self.state.add_contacts(
            {"type": "MOBILE", "value": m, "contactId": B_OWN + n} for n, m in enumerate(known)
        )
        self.state.add_contacts(
            {"type": "MOBILE", "value": m, "contactId": B_KNOWS_A + n}
            for n, m in enumerate(a_mobiles)
        )
        self._a_state.add_contacts(
            {"type": "MOBILE", "value": m, "contactId": A_KNOWS_B + n}
            for n, m in enumerate(self.mobiles)
        )
        self.sandbox = Sandbox(self.state).start()
        env = {
            **self._env,
            "ENGAGE_KEY_PREFIX": PREFIX_B,
            "ENGAGE_BASE_URL": self.sandbox.base_url,
            "ENGAGE_USERNAME": TENANT_B[0],
            "ENGAGE_PASSWORD": TENANT_B[1],
            "ENGAGE_DLQ_MAX_ENTRIES": str(B_DLQ_BOUND),
            "ENGAGE_ON_DONE_QUEUE": f"{PREFIX_B}.callbacks",
            # Slow enough that the batch is still queued when it is cancelled.
            "ENGAGE_RATE_LIMIT": "40",
        }
        self.worker = start_worker(
            celery_worker(env, self._log_dir / "chaos-b-worker.log", name=PREFIX_B)
        )
        threading.Thread(target=self._send_and_cancel, name="chaos-b", daemon=True).start()
        return self

    def _send_and_cancel(self) -> None:
        for n, mobile in enumerate(self.mobiles):
            lane = Priority.BULK if B_SENDS <= n < B_SENDS + B_BATCH else Priority.NORMAL
            request = build_send_request(MESSAGE_ID, mobile=f"+{mobile}")
            _retrying(
                lambda r=request, k=f"b-{n}", lane=lane: enqueue(self.rt, r, k, priority=lane)
            )
        batch = [f"b-{n}" for n in range(B_SENDS, B_SENDS + B_BATCH)]
        self.cancel_outcomes = _retrying(lambda: cancellation.cancel(self.rt, batch))
        self._enqueued.set()

    def finish(self, timeout: float) -> tuple[list[str], bool]:
        """Wait for its sends, replay its dead letters, stop it; report lines, and if it held."""
        self._enqueued.wait(timeout)
        keys = [f"b-{n}" for n in range(len(self.mobiles))]
        states = _wait_final(self.rt, keys, timeout)
        over_bound = self.rt.dead_letters.over_bound()
        listed = self.rt.dead_letters.keys()
        dead = [k for k in keys if states[k] == SendState.DEAD_LETTERED]
        # Every dead letter comes back, listed or not: known now, they are sent.
        self.state.add_contacts(
            {"type": "MOBILE", "value": self.mobiles[int(k[2:])], "contactId": B_OWN + int(k[2:])}
            for k in dead
        )
        replayed = sum(1 for k in dead if self._replay(k))
        after = _wait_final(self.rt, dead, timeout)
        replay_sent = sum(1 for k in dead if after[k] == SendState.SENT)
        assert self.worker is not None
        assert self.sandbox is not None
        self.worker.stop()
        self.sandbox.stop()

        own = {B_OWN + n for n in range(len(self.mobiles))}
        b_sends = dict(self.state.sends)
        crossed = sum(n for (_, rid), n in self._a_state.sends.items() if rid >= A_KNOWS_B)
        crossed += sum(n for (_, rid), n in b_sends.items() if rid not in own)
        duplicates = sum(n - 1 for n in b_sends.values() if n > 1)
        pending = [k for k in keys if states[k] not in FINAL]
        cancelled = [k for k, o in self.cancel_outcomes.items() if o == "cancelled_now"]
        cancelled_sent = sum(
            1 for k in cancelled if b_sends.get((MESSAGE_ID, B_OWN + int(k[2:])), 0) > 0
        )
        lines = [
            f"second deployment:     {len(keys)} sends ({PREFIX_B}, its own tenant, same Redis, "
            f"at the same time); cross-sends: {crossed}; duplicates: {duplicates}; "
            f"lost: {len(pending)}",
            f"dead-letter bound {B_DLQ_BOUND}:   {len(dead)} dead-lettered, {len(listed)} listed, "
            f"{len(over_bound)} over the bound (logged); replayed {replayed} of {len(dead)}, "
            f"{replay_sent} sent",
            f"cancel of a queued batch: {len(cancelled)} of {B_BATCH} bulk sends cancelled "
            f"while queued ({_others(self.cancel_outcomes)}); cancelled but sent: {cancelled_sent}",
        ]
        ok = (
            crossed == 0
            and duplicates == 0
            and not pending
            and replay_sent == len(dead)
            and len(listed) + len(over_bound) >= len(dead)
            and cancelled_sent == 0
            and len(cancelled) > 0
        )
        return lines, ok

    def _replay(self, key: str) -> bool:
        task_ids = [uuid(), uuid()]
        outcome, request = self.rt.dead_letters.replay(key, task_ids)
        if request is None:
            return False
        record = self.rt.ledger.record(key)
        publish(
            request,
            key,
            task_ids,
            priority=Priority(record.get("priority", "normal")),
            deployment=PREFIX_B,
        )
        return outcome == "requeued"


def ledger_restart_drill(
    env: dict[str, str], log_dir: Path, timeout: float
) -> tuple[list[str], bool]:
    """Sends queued with a callback, the ledger restarted empty, then a worker: count callbacks."""
    shutil.rmtree(log_dir / "chaos-drill-ledger", ignore_errors=True)
    ledger = RedisServer(log_dir / "chaos-drill-ledger", persistent=False).start()
    state = SandboxState(messages=())
    state.add_messages([{"messageId": MESSAGE_ID}])
    mobiles = [_mobile(69, n) for n in range(C_SENDS)]
    state.add_contacts(
        {"type": "MOBILE", "value": m, "contactId": C_OWN + n} for n, m in enumerate(mobiles)
    )
    sandbox = Sandbox(state).start()
    c_env = {
        **env,
        "ENGAGE_KEY_PREFIX": PREFIX_C,
        "REDIS_URL": ledger.url,
        # Its own callback queue: the main run's (``chaos.callbacks``) is counted by chaos_infra.
        "ENGAGE_ON_DONE_QUEUE": f"{PREFIX_C}.callbacks",
    }
    rt = Runtime.build(load_settings(c_env))
    keys = [f"c-{n}" for n in range(C_SENDS)]
    for key, mobile in zip(keys, mobiles, strict=True):
        enqueue(rt, build_send_request(MESSAGE_ID, mobile=f"+{mobile}"), key, on_done=CALLBACK_TASK)
    ledger.stop()
    ledger.start()  # empty: it kept nothing on disk
    worker = start_worker(
        celery_worker(
            {**c_env, "ENGAGE_BASE_URL": sandbox.base_url},
            log_dir / "chaos-c-worker.log",
            name=PREFIX_C,
        )
    )
    states = _wait_final(rt, keys, timeout)
    final = sum(1 for k in keys if states[k] in FINAL)
    broker = redis.Redis.from_url(rt.settings.broker_url)
    deadline = time.monotonic() + 30
    while len(called := _callback_keys(broker, rt.settings.on_done_queue)) < final:
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
    worker.stop()
    sandbox.stop()
    ledger.stop()
    duplicates = sum(n - 1 for n in state.sends.values() if n > 1)
    lines = [
        f"ledger Redis restarted without persistence: {C_SENDS} sends queued with a callback; "
        f"final: {final}; callbacks published: {len(called)}; duplicates: {duplicates}",
    ]
    return lines, final == C_SENDS and called == set(keys) and duplicates == 0


def _callback_keys(broker: redis.Redis, queue: str) -> set[str]:
    """The keys of the callback messages waiting in ``queue`` (kombu's Redis message format)."""
    keys: set[str] = set()
    for raw in broker.lrange(queue, 0, -1):
        body: Any = json.loads(base64.b64decode(json.loads(raw)["body"]))
        keys.add(body[0][0]["key"])
    return keys


def _wait_final(rt: Runtime, keys: list[str], timeout: float) -> dict[str, SendState | None]:
    deadline = time.monotonic() + timeout
    while True:
        states = {k: _retrying(lambda k=k: rt.ledger.state(k)) for k in keys}
        if all(s in FINAL for s in states.values()) or time.monotonic() > deadline:
            return states
        time.sleep(1.0)


def _retrying(call: Any, patience: float = 60.0) -> Any:
    """``call()``, tried again while Redis is away (the chaos run stops it for a while)."""
    deadline = time.monotonic() + patience
    while True:
        try:
            return call()
        except (redis.RedisError, ServiceUnavailable):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _others(outcomes: dict[str, str]) -> str:
    counts: dict[str, int] = {}
    for outcome in outcomes.values():
        if outcome != "cancelled_now":
            counts[outcome] = counts.get(outcome, 0) + 1
    return ", ".join(f"{n} {o} already" for o, n in sorted(counts.items())) or "none started"
