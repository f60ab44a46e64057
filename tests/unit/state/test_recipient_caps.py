"""The sending policy across clients: caps counted on the server's clock.

The races run on a real Redis; the sliding window on fakeredis, whose clock the test moves.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import fakeredis
import pytest
import redis

from tasks.core.request import Identifier, build_send_request
from tasks.core.send_options import Priority
from tasks.delivery.runtime import Runtime
from tasks.state.ledger import ClaimPolicy
from tests.support.environments import REAL_REDIS_URL, make_settings
from tests.support.real_redis import delete_prefix, unique_prefix
from tests.support.virtual_clock import VirtualClock

NUMBER = "48505606707"
REQUEST = build_send_request(23541, mobile="+" + NUMBER)
MOBILE = Identifier("MOBILE", NUMBER)


@pytest.fixture
def prefix(real_redis: redis.Redis) -> Iterator[str]:
    """A key prefix of this test's own, deleted afterwards."""
    name = unique_prefix("policy")
    yield name
    delete_prefix(real_redis, name)


def runtime(prefix: str, cap: str, client: redis.Redis | None = None) -> Runtime:
    """A runtime of its own client (as a worker process has), on the real Redis by default."""
    settings = make_settings(ENGAGE_KEY_PREFIX=prefix, ENGAGE_RECIPIENT_CAP=cap)
    if client is None:
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


def test_the_window_slides_on_the_redis_clock(clock: VirtualClock) -> None:
    """bulk=1/1s: the second send is capped, until the first is a full second old."""
    server = fakeredis.FakeServer()
    first, second = (
        runtime("policy", "bulk=1/1s", fakeredis.FakeRedis(server=server)) for _ in "ab"
    )
    assert gate(first, "a") == "ok"
    assert gate(second, "b") == "capped"
    clock.advance(0.9)
    assert gate(second, "c") == "capped"
    clock.advance(0.2)
    assert gate(second, "d") == "ok"
