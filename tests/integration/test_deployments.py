"""Two deployments on one Redis (each its own ENGAGE_KEY_PREFIX and Engage tenant) never cross."""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator

import pytest
import redis
from celery import uuid

from tasks.core.request import build_send_request
from tasks.core.send_options import Priority
from tasks.core.settings import load_settings
from tasks.delivery.context import SendMeta
from tasks.delivery.runtime import Runtime
from tasks.sandbox import Sandbox, SandboxState
from tasks.worker.pipeline import resolve_contact, send_single
from tasks.worker.publish import enqueue
from tests.integration.conftest import WorkerFactory, wait_for
from tests.support import sandbox as sandboxes
from tests.support.environments import PYTEST_PROCESS_ENV

pytestmark = pytest.mark.integration

MESSAGE_ID = 23541
SENDS = 10
TENANT_B = {"ENGAGE_USERNAME": "b@example.com", "ENGAGE_PASSWORD": "tenant-b-password"}
#: Each deployment's recipients, and the contact ids each tenant gives every number: a tenant
#: knows the other's people too (under ids of its own), so a crossed task would really send.
MOBILES = {
    "alpha": [f"4850560680{n}" for n in range(SENDS)],
    "beta": [f"4850560690{n}" for n in range(SENDS)],
}
IDS = {
    "alpha": {"alpha": 61_000, "beta": 69_000},
    "beta": {"beta": 62_000, "alpha": 68_000},
}


@pytest.fixture
def tenant_b() -> Iterator[Sandbox]:
    """A second Engage tenant: its own sandbox and login."""
    state = SandboxState(username=TENANT_B["ENGAGE_USERNAME"], password=TENANT_B["ENGAGE_PASSWORD"])
    yield from sandboxes.serve(state)


def know_everyone(sandbox: Sandbox, tenant: str) -> None:
    """``sandbox`` knows both deployments' numbers, under ids of its own."""
    sandbox.state.add_contacts(
        {"type": "MOBILE", "value": mobile, "contactId": IDS[tenant][owner] + n}
        for owner, mobiles in MOBILES.items()
        for n, mobile in enumerate(mobiles)
    )


def runtime_of(deployment: str) -> Runtime:
    """This process's runtime for ``deployment`` (same Redis, same broker)."""
    return Runtime.build(load_settings({**PYTEST_PROCESS_ENV, "ENGAGE_KEY_PREFIX": deployment}))


def all_sent(rt: Runtime) -> bool:
    """Every send of the test is sent in ``rt``'s deployment."""
    return all(rt.ledger.state(f"order-{n}") == "sent" for n in range(SENDS))


def recipients(sandbox: Sandbox) -> list[int]:
    """Every recipient the tenant sent to, once per send."""
    return sorted(int(c.query["recipientId"]) for c in sandbox.state.calls_to("message/sendSingle"))


def test_two_deployments_on_one_redis_send_only_their_own(
    start_workers: WorkerFactory, sandbox: Sandbox, tenant_b: Sandbox, redis_db: redis.Redis
) -> None:
    """Same keys, same Redis, both sending at once: each tenant gets its own people, once."""
    know_everyone(sandbox, "alpha")
    know_everyone(tenant_b, "beta")
    start_workers(sandbox.base_url, name="alpha", ENGAGE_KEY_PREFIX="alpha")
    start_workers(tenant_b.base_url, name="beta", ENGAGE_KEY_PREFIX="beta", **TENANT_B)
    deployments = {"alpha": runtime_of("alpha"), "beta": runtime_of("beta")}
    for n in range(SENDS):
        for name, rt in deployments.items():
            request = build_send_request(MESSAGE_ID, mobile=f"+{MOBILES[name][n]}")
            enqueue(rt, request, f"order-{n}")
    for name, rt in deployments.items():
        wait_for(functools.partial(all_sent, rt), timeout=60, what=f"{name}'s sends")
    assert recipients(sandbox) == [IDS["alpha"]["alpha"] + n for n in range(SENDS)]
    assert recipients(tenant_b) == [IDS["beta"]["beta"] + n for n in range(SENDS)]


def test_a_task_of_another_deployment_is_refused_and_returned(
    start_workers: WorkerFactory, sandbox: Sandbox, tenant_b: Sandbox, redis_db: redis.Redis
) -> None:
    """alpha's task found in beta's queue is not run by beta: it goes back to alpha's lane."""
    know_everyone(sandbox, "alpha")
    know_everyone(tenant_b, "beta")
    start_workers(tenant_b.base_url, name="beta", ENGAGE_KEY_PREFIX="beta", **TENANT_B)
    alpha = runtime_of("alpha")
    request = build_send_request(MESSAGE_ID, mobile=f"+{MOBILES['alpha'][0]}")
    task_ids = [uuid(), uuid()]
    alpha.ledger.claim("misrouted", request, task_ids)
    meta = SendMeta("alpha", Priority.NORMAL, None, time.time()).to_dict()
    data = request.to_dict()
    then = send_single.s(data, "misrouted", task_ids, meta=meta).set(task_id=task_ids[1])
    resolve_contact.apply_async(
        (data, "misrouted", task_ids),
        {"meta": meta},
        task_id=task_ids[0],
        queue="beta.normal",
        chain=[then],
    )
    wait_for(lambda: redis_db.llen("alpha.normal"), what="the task back in alpha's lane")
    assert tenant_b.state.calls == []
    assert alpha.ledger.state("misrouted") == "queued"
    start_workers(sandbox.base_url, name="alpha", ENGAGE_KEY_PREFIX="alpha")
    wait_for(lambda: alpha.ledger.state("misrouted") == "sent", what="alpha to send it")
    assert recipients(sandbox) == [IDS["alpha"]["alpha"]]
    assert tenant_b.state.calls == []
