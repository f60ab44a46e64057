"""End to end: the CLI or the API enqueues, a real worker sends through the sandbox over HTTP."""

from __future__ import annotations

import base64
import functools
import json
import subprocess
import sys
from collections.abc import Iterator

import pytest
import redis

from tasks.api import delivery_status, send_prepared_sms
from tasks.sandbox import Sandbox
from tests.integration.conftest import WorkerFactory, wait_for
from tests.support import sandbox as sandboxes
from tests.support.environments import WORKER_ENV, child_env
from tests.support.processes import run_module

pytestmark = pytest.mark.integration

TRANSPORTS = ["rest", "soap"]


@pytest.fixture
def custom_sandbox() -> Iterator[Sandbox]:
    """A sandbox under a tenant-style path prefix no code hard-codes."""
    yield from sandboxes.serve(prefix="/tenant-a/api/rest/v19")


def endpoint(sandbox: Sandbox, transport: str) -> str:
    """ENGAGE_BASE_URL for the transport."""
    return sandbox.soap_url if transport == "soap" else sandbox.base_url


def cli(base_url: str, *args: str, transport: str = "rest") -> subprocess.CompletedProcess[str]:
    """Run ``engage-sms`` as a user would, configured only through the environment."""
    env = child_env(WORKER_ENV, ENGAGE_BASE_URL=base_url, ENGAGE_TRANSPORT=transport)
    return run_module("tasks.cli", *args, env=env)


def workers_on(start_workers: WorkerFactory, sandbox: Sandbox, transport: str) -> str:
    """Workers calling ``sandbox`` over ``transport``; the base URL they use."""
    base_url = endpoint(sandbox, transport)
    start_workers(base_url, ENGAGE_TRANSPORT=transport)
    return base_url


def send_and_wait(
    base_url: str, mobile: str, *options: str, transport: str
) -> subprocess.CompletedProcess[str]:
    """``engage-sms send --message-id 23541 --mobile MOBILE [options] --wait 30``."""
    args = ["send", "--message-id", "23541", "--mobile", mobile, *options, "--wait", "30"]
    return cli(base_url, *args, transport=transport)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_cli_send_wait_makes_exactly_the_two_documented_calls(
    start_workers: WorkerFactory, custom_sandbox: Sandbox, transport: str
) -> None:
    """send --wait exits 0 after one contact/get and one sendSingle with the right bodies."""
    base_url = workers_on(start_workers, custom_sandbox, transport)
    result = send_and_wait(base_url, "48505606707", "--param", "firstName=Ann", transport=transport)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["state"] == "sent"
    assert "outcome" not in summary
    state = custom_sandbox.state
    (lookup,) = state.calls_to("contact/get")
    (send,) = state.calls_to("message/sendSingle")
    assert lookup.authorized
    assert send.authorized
    if transport == "rest":
        assert lookup.path == "/tenant-a/api/rest/v19/contact/get"
        assert lookup.body == {"type": "MOBILE", "value": "48505606707"}
        assert send.query == {"messageId": "23541", "recipientId": "33457"}
        assert send.body == {"parameters": [{"name": "firstName", "value": "Ann"}]}
    assert state.sends == {(23541, 33457): 1}


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_unknown_mobile_is_dead_lettered_and_wait_fails(
    start_workers: WorkerFactory, sandbox: Sandbox, transport: str
) -> None:
    """An unknown number: no sendSingle, a dead-letter entry, send --wait exits non-zero."""
    base_url = workers_on(start_workers, sandbox, transport)
    result = send_and_wait(
        base_url, "+48600000001", "--idempotency-key", "unknown-1", transport=transport
    )
    assert result.returncode == 1
    assert "unknown_recipient" in result.stderr
    assert sandbox.state.calls_to("message/sendSingle") == []
    assert len(sandbox.state.calls_to("contact/get")) == 3  # the first try and two short retries
    listing = json.loads(cli(base_url, "dlq", "list", "--json").stdout)
    assert [(e["key"], e["reason"]) for e in listing] == [("unknown-1", "unknown_recipient")]
    assert "48600000001" not in json.dumps(listing)


def test_three_sends_with_one_key_send_once(start_workers: WorkerFactory, sandbox: Sandbox) -> None:
    """Enqueued three times under one key: one sendSingle, and status says sent."""
    start_workers(sandbox.base_url)
    handles = [
        send_prepared_sms(23541, mobile="+48505606707", idempotency_key="order-7") for _ in range(3)
    ]
    assert len({h.task_id for h in handles}) == 1
    wait_for(lambda: delivery_status("order-7")["state"] == "sent", what="sent")
    status = cli(sandbox.base_url, "status", "order-7")
    assert json.loads(status.stdout)["state"] == "sent"
    assert len(sandbox.state.calls_to("message/sendSingle")) == 1


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_two_503_then_success_sends_exactly_once(
    start_workers: WorkerFactory, sandbox: Sandbox, transport: str
) -> None:
    """503, 503, then 204: three attempts, one successful send."""
    workers_on(start_workers, sandbox, transport)
    sandbox.state.set_faults({"script": {"message/sendSingle": [503, 503]}})
    send_prepared_sms(23541, mobile="+48505606707", idempotency_key="retry-1")
    wait_for(lambda: delivery_status("retry-1")["state"] == "sent", what="sent")
    assert len(sandbox.state.calls_to("message/sendSingle")) == 3
    assert sandbox.state.sends == {(23541, 33457): 1}
    assert delivery_status("retry-1")["attempts"] == 3


def test_persistent_5xx_ends_in_retries_exhausted(
    start_workers: WorkerFactory, sandbox: Sandbox
) -> None:
    """A send that keeps failing ends dead-lettered, not lost."""
    start_workers(sandbox.base_url)
    sandbox.state.set_faults({"script": {"message/sendSingle": [503] * 10}})
    send_prepared_sms(23541, mobile="+48505606707", idempotency_key="down-1")
    status = wait_for(
        lambda: (s := delivery_status("down-1"))["state"] == "dead_lettered" and s, what="dlq"
    )
    assert status["reason"] == "retries_exhausted"
    assert sandbox.state.sends == {}


def test_worker_killed_mid_send_never_sends_twice(
    start_workers: WorkerFactory, sandbox: Sandbox, redis_db: redis.Redis
) -> None:
    """SIGKILL during sendSingle, then restart: dead-lettered outcome_unknown, sent once."""
    env = {"ENGAGE_READ_TIMEOUT": "5", "ENGAGE_VISIBILITY_TIMEOUT": "10"}
    worker = start_workers(sandbox.base_url, **env)
    sandbox.state.set_faults({"script": {"message/sendSingle": ["delay:1.5"]}})
    send_prepared_sms(23541, mobile="+48505606707", idempotency_key="crash-1")
    wait_for(lambda: sandbox.state.calls_to("message/sendSingle"), what="the send to start")
    worker.kill()
    wait_for(lambda: sandbox.state.sends, what="Engage to finish the send it received")
    start_workers(sandbox.base_url, name="restarted", **env)
    status = wait_for(
        lambda: (s := delivery_status("crash-1"))["state"] in ("sent", "dead_lettered") and s,
        timeout=40,
        what="a final state",
    )
    assert status["state"] == "dead_lettered"
    assert status["reason"] == "outcome_unknown"
    assert len(sandbox.state.calls_to("message/sendSingle")) == 1
    assert sandbox.state.sends == {(23541, 33457): 1}


def test_replay_after_the_contact_exists_sends_it(
    start_workers: WorkerFactory, sandbox: Sandbox
) -> None:
    """An unknown recipient replayed after the contact was created is sent once."""
    start_workers(sandbox.base_url)
    send_prepared_sms(23541, mobile="+48600000002", idempotency_key="late-1")
    wait_for(lambda: delivery_status("late-1")["state"] == "dead_lettered", what="dlq")
    sandbox.state.add_contacts([{"type": "MOBILE", "value": "48600000002", "contactId": 9}])
    replay = cli(sandbox.base_url, "dlq", "replay", "late-1")
    assert json.loads(replay.stdout) == {"late-1": "requeued"}
    wait_for(lambda: delivery_status("late-1")["state"] == "sent", what="sent")
    assert sandbox.state.sends == {(23541, 9): 1}
    assert json.loads(cli(sandbox.base_url, "dlq", "list", "--json").stdout) == []


def test_wrong_password_parks_sends_as_auth_failed(
    start_workers: WorkerFactory, sandbox: Sandbox
) -> None:
    """After one refusal, later sends are parked as auth_failed without calling Engage again."""
    start_workers(sandbox.base_url, ENGAGE_PASSWORD="wrong")
    send_prepared_sms(23541, mobile="+48505606707", idempotency_key="auth-first")
    wait_for(functools.partial(is_dead_lettered, "auth-first"), what="the first refusal")
    assert delivery_status("auth-first")["reason"] == "auth_failed"
    (refused,) = sandbox.state.calls  # the one call that learnt the password is wrong
    keys = [f"auth-{n}" for n in range(5)]
    for key in keys:
        send_prepared_sms(23541, mobile="+48505606707", idempotency_key=key)
    for key in keys:
        wait_for(functools.partial(is_dead_lettered, key), what=f"{key} dead-lettered")
        assert delivery_status(key)["reason"] == "auth_failed"
    assert sandbox.state.calls == [refused]  # the flag was set: nobody asked Engage again
    assert sandbox.state.sends == {}


def test_task_messages_show_masked_arguments(redis_db: redis.Redis) -> None:
    """One message: resolve_contact carrying send_single as its chain, arguments masked."""
    handle = send_prepared_sms(
        23541, mobile="+48505606707", parameters={"code": "918273"}, idempotency_key="mask-1"
    )
    (raw,) = redis_db.lrange("engage.normal", 0, -1)  # the normal lane's queue
    message = json.loads(raw)
    headers = message["headers"]
    _args, _kwargs, embed = json.loads(base64.b64decode(message["body"]))
    (then,) = embed["chain"]
    assert (then["task"], then["options"]["task_id"]) == ("engage.send_single", handle.task_id)
    assert headers["task"] == "engage.resolve_contact"
    assert "MOBILE:48*******07" in headers["argsrepr"]
    assert "48505606707" not in headers["argsrepr"] + headers["kwargsrepr"]
    assert "'code'" in headers["argsrepr"]
    assert "918273" not in headers["argsrepr"]  # parameter values may be personal: names only


def is_dead_lettered(key: str) -> bool:
    """True once the send under ``key`` is dead-lettered."""
    return bool(delivery_status(key)["state"] == "dead_lettered")


def test_concurrent_enqueues_from_several_processes_send_once(
    start_workers: WorkerFactory, sandbox: Sandbox
) -> None:
    """Four processes enqueue one key at once: one chain, one sendSingle."""
    start_workers(sandbox.base_url)
    env = child_env(WORKER_ENV, ENGAGE_BASE_URL=sandbox.base_url)
    argv = [
        sys.executable,
        "-m",
        "tasks.cli",
        "send",
        "--message-id",
        "23541",
        "--mobile",
        "+48505606707",
        "--idempotency-key",
        "race-1",
    ]
    processes = [
        subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True) for _ in range(4)
    ]
    summaries = [json.loads(p.communicate(timeout=60)[0]) for p in processes]
    assert [s["created"] for s in summaries].count(True) == 1
    assert len({s["task_id"] for s in summaries}) == 1
    wait_for(lambda: delivery_status("race-1")["state"] == "sent", what="sent")
    assert len(sandbox.state.calls_to("message/sendSingle")) == 1
