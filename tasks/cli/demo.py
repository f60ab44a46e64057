"""``make demo``: one prepared SMS through a real worker, real Redis and the local sandbox.

Everything runs on embedded defaults and is stopped afterwards. Redis is a throwaway server of
the demo's own (free port, temporary directory; ``redis-server``, else the Valkey server of the
``[demo]`` extra), unless ``--redis-url`` names one. With ``--sentinel`` it is a Sentinel set of
its own instead (a primary, a replica and three sentinels, each on a free port), and every process
of the demo is configured by ``sentinel://`` URLs and the master name only. Package variables of
the shell (``REDIS_URL``, ``ENGAGE_BROKER_URL``...) never redirect it.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests

from tasks.cli.exit_codes import ExitCode
from tasks.cli.local_stack import ManagedProcess, celery_worker, start_worker
from tasks.cli.redis_server import RedisServer
from tasks.cli.sentinel_set import MASTER_NAME, SentinelSet
from tasks.core.masking import mask_value
from tasks.core.urls import redact_url
from tasks.sandbox import Sandbox, SandboxState

#: Variables of the package a shell may hold for another deployment: never read by the demo.
PACKAGE_VARIABLES = ("ENGAGE_", "CELERY_", "REDIS_URL")
DEMO_USERNAME = "api@example.com"
DEMO_PASSWORD = "sandbox-password"  # noqa: S105  (the local sandbox's password, not a secret)
MESSAGE_ID = 23541
KNOWN_MOBILE = "+48 505 606 707"
UNKNOWN_MOBILE = "+48 600 000 001"
LOG_DIR = Path(".run")
FLOWER_PORT = 5555
FLOWER_USER = "demo"
#: The demo set's primary refuses writes no replica holds, as the README's Sentinel example.
SENTINEL_SERVER_OPTIONS = ("--min-replicas-to-write", "1", "--min-replicas-max-lag", "10")


def run_demo(
    hold: float = 0.0, redis_url: str | None = None, *, sentinel: bool = False
) -> ExitCode:
    """Run the demo; 0 when the known contact's SMS was sent. ``hold``: seconds to stay up.

    ``redis_url``: a Redis to use instead of a throwaway server of the demo's own.
    ``sentinel``: a throwaway Sentinel set of the demo's own instead.
    """
    if sentinel:
        with demo_sentinel() as url:
            return _run(hold, url, {"ENGAGE_REDIS_MASTER_NAME": MASTER_NAME})
    with demo_redis(redis_url) as url:
        return _run(hold, url)


@contextlib.contextmanager
def demo_sentinel() -> Iterator[str]:
    """A throwaway Sentinel set's ``sentinel://`` URL; the set stopped, its directory removed."""
    data_dir = Path(tempfile.mkdtemp(prefix="engage-demo-sentinel-"))
    servers = SentinelSet(data_dir, replicas=1, server_options=SENTINEL_SERVER_OPTIONS)
    try:
        servers.start()
        _say(
            f"Redis: a throwaway Sentinel set of the demo's own: primary "
            f"127.0.0.1:{servers.primary_port()}, 1 replica, sentinels {servers.url} "
            f"(master name {MASTER_NAME!r}; data in {data_dir})"
        )
        yield servers.url
    finally:
        servers.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@contextlib.contextmanager
def demo_redis(url: str | None) -> Iterator[str]:
    """``url`` as given, else a throwaway server's, stopped and its directory removed after."""
    if url is not None:
        _say(f"Redis: the one you named, {redact_url(url)}")
        yield url
        return
    data_dir = Path(tempfile.mkdtemp(prefix="engage-demo-redis-"))
    server = RedisServer(data_dir, persistent=False).start()
    _say(f"Redis: a throwaway server of the demo's own, {server.url} (data in {data_dir})")
    try:
        yield server.url
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def _run(hold: float, redis_url: str, extra_env: dict[str, str] | None = None) -> ExitCode:
    sandbox = Sandbox(SandboxState(username=DEMO_USERNAME, password=DEMO_PASSWORD)).start()
    _say(f"Engage sandbox: {sandbox.base_url}")
    for name in [n for n in os.environ if n.startswith(PACKAGE_VARIABLES)]:
        del os.environ[name]  # a shell's REDIS_URL must not send the demo to someone's Redis
    env = {
        **os.environ,
        "ENGAGE_BROKER_URL": redis_url,
        "REDIS_URL": redis_url,
        "ENGAGE_BASE_URL": sandbox.base_url,
        "ENGAGE_USERNAME": DEMO_USERNAME,
        "ENGAGE_PASSWORD": DEMO_PASSWORD,
        "ENGAGE_KEY_PREFIX": "engage-demo",
        # Short lookups for the unknown contact, so the demo ends in seconds.
        "ENGAGE_UNKNOWN_RECIPIENT_DELAY": "0.5",
        **(extra_env or {}),
    }
    os.environ.update(env)  # this process enqueues through the same configuration
    worker = celery_worker(env, LOG_DIR / "demo-worker.log", name="demo", concurrency=4)
    flower_password = secrets.token_urlsafe(9)  # printed below; Flower is never open
    flower = flower_process(env, LOG_DIR / "demo-flower.log", password=flower_password)
    try:
        start_worker(worker)
        _say(f"Celery worker: running (log: {worker.log_path})")
        flower_up = _start_flower(flower, flower_password)
        outcome = _send_and_show(sandbox)
        if flower_up:
            _show_flower(flower_password)
        if hold > 0:
            _say(f"holding everything up for {hold:g} s (Ctrl-C to stop)")
            with contextlib.suppress(KeyboardInterrupt):
                time.sleep(hold)
        return outcome
    finally:
        flower.stop()
        worker.stop()
        sandbox.stop()
        _say("stopped what the demo started")


def flower_process(
    env: dict[str, str], log_path: Path, *, password: str, port: int = FLOWER_PORT
) -> ManagedProcess:
    """Flower as the README runs it, ``engage-sms flower``: on 127.0.0.1, behind basic auth."""
    argv = [sys.executable, "-m", "tasks.cli", "flower", "--port", str(port)]
    login = {"FLOWER_BASIC_AUTH": f"{FLOWER_USER}:{password}"}
    return ManagedProcess(argv, env={**env, **login}, log_path=log_path)


def _start_flower(flower: ManagedProcess, password: str) -> bool:
    offset = len(flower.log_text())
    flower.start()
    try:
        flower.wait_for_log("Visit me at", 30.0, offset=offset)
    except (RuntimeError, TimeoutError):
        # The send does not need Flower: say why it is missing and carry on.
        flower.stop()
        _say(f"Flower did not start (port {FLOWER_PORT} in use?); see {flower.log_path}")
        return False
    _say(f"Flower: http://127.0.0.1:{FLOWER_PORT} (user {FLOWER_USER}, password {password})")
    return True


def _show_flower(password: str) -> None:
    """Print the tasks as Flower's API shows them: names, states, masked arguments."""
    url = f"http://127.0.0.1:{FLOWER_PORT}/api/tasks"
    tasks: dict[str, Any] = {}
    deadline = time.monotonic() + 10
    # Flower learns of tasks from worker events: give the last ones a moment to arrive.
    while time.monotonic() < deadline:
        try:
            tasks = requests.get(url, auth=(FLOWER_USER, password), timeout=5).json()
        except (requests.RequestException, ValueError):
            tasks = {}
        if tasks and all(t.get("state") in ("SUCCESS", "FAILURE") for t in tasks.values()):
            break
        time.sleep(0.5)
    _say(f"what Flower shows ({url}):")
    for task in sorted(tasks.values(), key=lambda t: t.get("received") or 0):
        line = f"  {task.get('name')}  {task.get('state')}  args={task.get('args')}"
        if task.get("exception"):
            line += f"  exception={task['exception']}"
        print(line[:400])


def _send_and_show(sandbox: Sandbox) -> ExitCode:
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
    return ExitCode.OK if ok else ExitCode.FAILED


def _wait(status_of: Any, key: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status: dict[str, Any] = status_of(key)
        if status["state"] in ("sent", "dead_lettered") or time.monotonic() > deadline:
            return status
        time.sleep(0.1)


def _say(text: str) -> None:
    print(f"==> {text}", flush=True)
