"""A ledger Redis restarted without persistence: every send still ends, with its callback.

The ledger lives on a Redis server of the test's own (``REDIS_URL``), apart from the broker, and
keeps nothing on disk: a restart empties it, as a cache-configured or failed-over Redis would.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tasks.cli.local_stack import ManagedProcess
from tasks.cli.redis_server import RedisServer
from tasks.core.request import build_send_request
from tasks.core.settings import load_settings
from tasks.delivery.runtime import Runtime
from tasks.sandbox import Sandbox
from tasks.worker.publish import enqueue
from tests.integration.conftest import WorkerFactory, wait_for
from tests.support import callback_app
from tests.support.environments import PYTEST_PROCESS_ENV

pytestmark = pytest.mark.integration

MESSAGE_ID = 23541
SENDS = 4


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[RedisServer]:
    """The ledger's own Redis, keeping nothing on disk."""
    server = RedisServer(tmp_path / "ledger", persistent=False).start()
    yield server
    server.stop()


def runtime_on(ledger: RedisServer) -> Runtime:
    """This process's runtime with the ledger on ``ledger`` (the broker stays the test one)."""
    return Runtime.build(load_settings({**PYTEST_PROCESS_ENV, "REDIS_URL": ledger.url}))


def callbacks_received(broker: redis.Redis) -> list[dict[str, object]]:
    """The statuses the host app's callback task received so far."""
    return [json.loads(raw) for raw in broker.lrange(callback_app.RECEIVED, 0, -1)]


def test_callbacks_survive_a_ledger_restart_before_the_sends(
    start_workers: WorkerFactory,
    sandbox: Sandbox,
    redis_db: redis.Redis,
    host_worker: ManagedProcess,
    ledger: RedisServer,
) -> None:
    """Queued sends whose records were lost are sent once each, and each callback is published."""
    rt = runtime_on(ledger)
    sandbox.state.add_contacts(
        {"type": "MOBILE", "value": f"4850560670{n}", "contactId": 81_000 + n} for n in range(SENDS)
    )
    keys = [f"lost-{n}" for n in range(SENDS)]
    for n, key in enumerate(keys):
        request = build_send_request(MESSAGE_ID, mobile=f"+4850560670{n}")
        enqueue(rt, request, key, on_done=callback_app.TASK)
    ledger.stop()
    ledger.start()  # empty: no persistence
    start_workers(sandbox.base_url, REDIS_URL=ledger.url)
    received = wait_for(
        lambda: len(got := callbacks_received(redis_db)) >= SENDS and got,
        timeout=60,
        what=f"{SENDS} callbacks",
    )
    assert sorted(s["key"] for s in received) == keys
    assert {s["state"] for s in received} == {"sent"}
    assert [rt.ledger.status(k)["on_done"] for k in keys] == [callback_app.TASK] * SENDS
    assert len(sandbox.state.calls_to("message/sendSingle")) == SENDS


def test_a_record_lost_during_the_send_is_written_in_full(
    start_workers: WorkerFactory,
    sandbox: Sandbox,
    redis_db: redis.Redis,
    host_worker: ManagedProcess,
    ledger: RedisServer,
) -> None:
    """Lost between the lease and Engage's 204: the status answers (sent), the callback goes."""
    rt = runtime_on(ledger)
    # The answer comes 2 s after the request, well inside the call's total deadline (connect +
    # read timeout): a slow machine must not turn this send into an outcome_unknown.
    start_workers(sandbox.base_url, REDIS_URL=ledger.url, ENGAGE_READ_TIMEOUT="6")
    sandbox.state.set_faults({"script": {"message/sendSingle": ["delay:2"]}})
    enqueue(
        rt, build_send_request(MESSAGE_ID, mobile="+48505606707"), "mid", on_done=callback_app.TASK
    )
    wait_for(lambda: sandbox.state.calls_to("message/sendSingle"), what="the send to start")
    ledger.stop()
    ledger.start()
    received = wait_for(lambda: callbacks_received(redis_db), timeout=60, what="the callback")
    status = rt.ledger.status("mid")
    assert (status["state"], status["recipient"], status["on_done"]) == (
        "sent",
        "MOBILE:48*******07",
        callback_app.TASK,
    )
    assert [(s["key"], s["state"]) for s in received] == [("mid", "sent")]
    assert len(sandbox.state.calls_to("message/sendSingle")) == 1
