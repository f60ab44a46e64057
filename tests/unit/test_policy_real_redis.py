"""The sending policy on a real Redis: caps counted across clients on the server's clock."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import redis

from tasks.delivery.runtime import Runtime
from tasks.request import Identifier, build_send_request
from tasks.send_options import Priority
from tasks.state.ledger import ClaimPolicy
from tests.support.environments import REAL_REDIS_URL, make_settings
from tests.support.real_redis import delete_prefix, unique_prefix

NUMBER = "48505606707"
REQUEST = build_send_request(23541, mobile="+" + NUMBER)
MOBILE = Identifier("MOBILE", NUMBER)


@pytest.fixture
def prefix(real_redis: redis.Redis) -> Iterator[str]:
    """A key prefix of this test's own, deleted afterwards."""
    name = unique_prefix("policy")
    yield name
    delete_prefix(real_redis, name)


def runtime(prefix: str, cap: str) -> Runtime:
    """A runtime of its own client (as a worker process has) on the real Redis."""
    settings = make_settings(ENGAGE_KEY_PREFIX=prefix, ENGAGE_RECIPIENT_CAP=cap)
    client = redis.Redis.from_url(REAL_REDIS_URL, socket_connect_timeout=1)
    return Runtime.build(settings, redis_client=client)


def gate(rt: Runtime, key: str) -> str:
    """Claim, lease and gate one bulk send of ``key``."""
    rt.ledger.claim(key, REQUEST, ["r", "s"], policy=ClaimPolicy())
    rt.ledger.begin_send(key, f"{key}:0", 33457)
    return rt.gate.check(
        key, f"{key}:0", suppression=None, cap=rt.caps.check_for(MOBILE, Priority.BULK)
    )


def test_racing_workers_get_exactly_the_cap(prefix: str) -> None:
    """Twelve clients in threads race for a cap of 2: two pass, ten are capped."""
    runtimes = [runtime(prefix, "bulk=2/24h") for _ in range(12)]
    barrier = threading.Barrier(len(runtimes))
    results: list[str] = []

    def race(index: int) -> None:
        barrier.wait()
        results.append(gate(runtimes[index], f"key-{index}"))

    threads = [threading.Thread(target=race, args=(i,)) for i in range(len(runtimes))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["capped"] * 10 + ["ok"] * 2


def test_the_window_slides_on_the_redis_clock(prefix: str) -> None:
    """bulk=1/1s: the second send is capped, a send after the window passes again."""
    rt = runtime(prefix, "bulk=1/1s")
    assert gate(rt, "a") == "ok"
    assert gate(rt, "b") == "capped"
    deadline = time.monotonic() + 5
    outcome = "capped"
    index = 0
    while outcome == "capped" and time.monotonic() < deadline:
        index += 1
        time.sleep(0.1)
        outcome = gate(rt, f"c{index}")
    assert outcome == "ok"
