"""``doctor`` on Sentinel: each failure is named, with its fix (real servers and sentinels)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tasks.cli.doctor import Check
from tasks.cli.doctor_sentinel import (
    SENTINEL_FIX,
    check_primary_config,
    check_replicas,
    check_sentinels,
    sentinel_checks,
)
from tasks.cli.redis_server import RedisServer
from tasks.cli.sentinel_set import MASTER_NAME, SentinelSet
from tasks.core.settings import Settings
from tests.support.environments import make_settings

pytestmark = pytest.mark.integration

SAFE_OPTIONS = (
    "--min-replicas-to-write",
    "1",
    "--min-replicas-max-lag",
    "10",
    "--appendonly",
    "yes",
)


@pytest.fixture(scope="module")
def three_sentinels(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelSet]:
    """A primary, one replica and three sentinels (quorum 2) of this module's own."""
    servers = SentinelSet(
        tmp_path_factory.mktemp("doctor-sentinel"), replicas=1, server_options=SAFE_OPTIONS
    )
    try:
        yield servers.start()
    finally:
        servers.stop()


def settings_for(url: str, master: str = MASTER_NAME, **env: str) -> Settings:
    """Settings whose ledger and broker are the Sentinel set at ``url``."""
    return make_settings(
        CELERY_BROKER_URL=url, REDIS_URL=url, ENGAGE_REDIS_MASTER_NAME=master, **env
    )


def by_name(checks: list[Check]) -> dict[str, Check]:
    """The checks by name."""
    return {check.name: check for check in checks}


def test_a_healthy_set_passes_every_check(three_sentinels: SentinelSet) -> None:
    """Three sentinels, quorum, a replica for the one ack, safe primary settings: all OK."""
    checks = sentinel_checks(settings_for(three_sentinels.url))
    assert [(c.name, c.ok) for c in checks] == [
        ("sentinel", True),
        ("replicas", True),
        ("min-replicas-to-write", True),
        ("appendonly", True),
        ("maxmemory-policy", True),
    ]


def test_an_unknown_master_name_fails_with_its_fix(three_sentinels: SentinelSet) -> None:
    """No sentinel monitors the name: the check says so and names the setting to fix."""
    check = check_sentinels(settings_for(three_sentinels.url, "nosuch"), three_sentinels.url)
    assert check.ok is False
    assert "none of the 3 sentinel(s) knows a primary named 'nosuch'" in check.detail
    assert check.fix.startswith("check ENGAGE_REDIS_MASTER_NAME")
    # And the primary cannot be asked: the replica count is reported as not checked.
    checks = by_name(sentinel_checks(settings_for(three_sentinels.url, "nosuch")))
    assert checks["replicas"].ok is None


def test_too_few_sentinels_listed_fails_with_its_fix(three_sentinels: SentinelSet) -> None:
    """A URL naming one sentinel: a failover cannot be relied on; run and list three."""
    one = three_sentinels.url.split(";")[0]
    check = check_sentinels(settings_for(one), one)
    assert check.ok is False
    assert check.detail.startswith("1 of 1 listed sentinel(s) answer; they see 3 sentinel(s)")
    assert check.fix == SENTINEL_FIX


def test_no_quorum_fails_with_the_sentinels_answer_and_its_fix(
    three_sentinels: SentinelSet,
) -> None:
    """A quorum the sentinels cannot reach: CKQUORUM's NOQUORUM is shown with the fix."""
    for number in range(3):
        three_sentinels.sentinel(number).sentinel_set(MASTER_NAME, "quorum", 4)
    try:
        check = check_sentinels(settings_for(three_sentinels.url), three_sentinels.url)
    finally:
        for number in range(3):
            three_sentinels.sentinel(number).sentinel_set(MASTER_NAME, "quorum", 2)
    assert check.ok is False
    assert "NOQUORUM" in check.detail
    assert check.fix == SENTINEL_FIX


def test_two_sentinels_seen_fail_with_their_fix(tmp_path: Path) -> None:
    """Two sentinels that reach quorum 2 still fail: one host down leaves no majority."""
    servers = SentinelSet(tmp_path, replicas=0, sentinels=2).start()
    try:
        check = check_sentinels(settings_for(servers.url), servers.url)
    finally:
        servers.stop()
    assert check.ok is False
    assert check.detail.startswith("2 of 2 listed sentinel(s) answer; they see 2 sentinel(s)")
    assert check.fix == SENTINEL_FIX


def test_no_replica_acks_fails_with_its_fix() -> None:
    """ENGAGE_REPLICA_ACKS=0 on Sentinel: a failover may send twice; the fix turns acks on."""
    check = check_replicas(make_settings(ENGAGE_REPLICA_ACKS="0"), {"connected_slaves": 2})
    assert check.ok is False
    assert check.detail == (
        "2 replica(s) connected; ENGAGE_REPLICA_ACKS=0: a failover may lose a lease and send a "
        "message twice"
    )
    assert check.fix == "set ENGAGE_REPLICA_ACKS=1 (the default with sentinel://)"


def test_fewer_replicas_than_acks_fails_with_its_fix(three_sentinels: SentinelSet) -> None:
    """One replica connected, two acks asked: every send would be held back."""
    checks = by_name(sentinel_checks(settings_for(three_sentinels.url, ENGAGE_REPLICA_ACKS="2")))
    replicas = checks["replicas"]
    assert replicas.ok is False
    assert replicas.detail == (
        "1 replica(s) connected; ENGAGE_REPLICA_ACKS=2: every send is held back until enough "
        "replicas are connected"
    )
    assert replicas.fix == "start the replicas (replicaof <primary>), or lower ENGAGE_REPLICA_ACKS"


@pytest.fixture
def unsafe_primary(tmp_path: Path) -> Iterator[redis.Redis]:
    """A Redis of this test's own with Redis's defaults where they are unsafe here."""
    server = RedisServer(tmp_path / "primary", persistent=False).start()
    client = redis.Redis(port=server.port)
    client.config_set("min-replicas-to-write", 0)
    client.config_set("appendonly", "no")
    client.config_set("maxmemory-policy", "allkeys-lru")
    try:
        yield client
    finally:
        server.stop()


def test_unsafe_primary_settings_each_fail_with_their_fix(unsafe_primary: redis.Redis) -> None:
    """No min-replicas-to-write, no AOF, an evicting policy: three failures, three fixes."""
    checks = by_name(check_primary_config(unsafe_primary))
    assert {name: (c.ok, c.detail) for name, c in checks.items()} == {
        "min-replicas-to-write": (False, "0 on the primary"),
        "appendonly": (False, "no on the primary"),
        "maxmemory-policy": (False, "allkeys-lru on the primary"),
    }
    assert checks["min-replicas-to-write"].fix.startswith(
        "set min-replicas-to-write 1 and min-replicas-max-lag 10"
    )
    assert checks["appendonly"].fix.startswith("set appendonly yes")
    assert checks["maxmemory-policy"].fix.startswith("set maxmemory-policy noeviction")
