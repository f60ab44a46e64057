"""``make demo``: one prepared SMS through a real worker, real Redis and the local sandbox.

Everything runs on embedded defaults and is stopped afterwards: a Redis is started only if none
answers on 127.0.0.1:6379; the demo uses database 15 and its own key prefix there.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from tasks.local_stack import celery_worker, ensure_redis, start_worker, stop_redis
from tasks.masking import mask_value
from tasks.sandbox import Sandbox, SandboxState

DEMO_BROKER = "redis://127.0.0.1:6379/15"
DEMO_USERNAME = "api@example.com"
DEMO_PASSWORD = "sandbox-password"  # noqa: S105  (the local sandbox's password, not a secret)
MESSAGE_ID = 23541
KNOWN_MOBILE = "+48 505 606 707"
UNKNOWN_MOBILE = "+48 600 000 001"
LOG_DIR = Path(".run")


def run_demo() -> int:
    """Run the demo; 0 when the known contact's SMS was sent."""
    started_redis = ensure_redis(DEMO_BROKER)
    _say(f"Redis: {'started a local one' if started_redis else 'using the one on 127.0.0.1:6379'}")
    sandbox = Sandbox(SandboxState(username=DEMO_USERNAME, password=DEMO_PASSWORD)).start()
    _say(f"Engage sandbox: {sandbox.base_url}")
    env = {
        **os.environ,
        "CELERY_BROKER_URL": DEMO_BROKER,
        "ENGAGE_BASE_URL": sandbox.base_url,
        "ENGAGE_USERNAME": DEMO_USERNAME,
        "ENGAGE_PASSWORD": DEMO_PASSWORD,
        "ENGAGE_KEY_PREFIX": "engage-demo",
        # Short lookups for the unknown contact, so the demo ends in seconds.
        "ENGAGE_UNKNOWN_RECIPIENT_DELAY": "0.5",
    }
    os.environ.update(env)  # this process enqueues through the same configuration
    worker = celery_worker(env, LOG_DIR / "demo-worker.log", name="demo", concurrency=4)
    try:
        start_worker(worker)
        _say(f"Celery worker: running (log: {worker.log_path})")
        return _send_and_show(sandbox)
    finally:
        worker.stop()
        sandbox.stop()
        if started_redis:
            stop_redis(DEMO_BROKER)
        _say("stopped what the demo started")


def _send_and_show(sandbox: Sandbox) -> int:
    from tasks.api import delivery_status, send_prepared_sms  # noqa: PLC0415  (after env is set)

    run = time.strftime("%Y%m%dT%H%M%S")
    _say(f"enqueue: message {MESSAGE_ID} to {KNOWN_MOBILE} with firstName=Ann")
    handle = send_prepared_sms(
        MESSAGE_ID,
        mobile=KNOWN_MOBILE,
        parameters={"firstName": "Ann"},
        idempotency_key=f"demo-{run}",
    )
    again = send_prepared_sms(
        MESSAGE_ID,
        mobile=KNOWN_MOBILE,
        parameters={"firstName": "Ann"},
        idempotency_key=f"demo-{run}",
    )
    _say(f"same key again -> created={again.created}, same task {again.task_id == handle.task_id}")
    unknown = send_prepared_sms(
        MESSAGE_ID, mobile=UNKNOWN_MOBILE, idempotency_key=f"demo-{run}-unknown"
    )
    sent = _wait(delivery_status, handle.key)
    lost = _wait(delivery_status, unknown.key)
    _say("outcome of the send:")
    print(json.dumps(sent, indent=2))
    _say("outcome for an unknown number:")
    print(json.dumps(lost, indent=2))
    _say("what the sandbox (Engage) received:")
    for call in sandbox.state.calls:
        body = json.dumps(mask_value(call.body))  # even a sandbox's numbers stay out of logs
        print(f"  {call.method} {call.path} {call.query or ''} {body} -> {call.status}")
    ok = sent["state"] == "sent" and lost["state"] == "dead_lettered"
    _say("demo OK: sent once, unknown recipient dead-lettered" if ok else "demo FAILED")
    return 0 if ok else 1


def _wait(status_of: Any, key: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status: dict[str, Any] = status_of(key)
        if status["state"] in ("sent", "dead_lettered") or time.monotonic() > deadline:
            return status
        time.sleep(0.1)


def _say(text: str) -> None:
    print(f"==> {text}", flush=True)
