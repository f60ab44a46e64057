"""``engage-sms doctor`` on Sentinel: can the set fail over, and does a failover keep our writes?

Run only when ``REDIS_URL`` or the broker is a ``sentinel://`` URL. Each failure comes with its
fix. The primary's settings are read with ``CONFIG GET``; a server that refuses it is reported
as not checked.
"""

from __future__ import annotations

from typing import Any

import redis

from tasks.cli.doctor import TIMEOUT, Check
from tasks.core.settings import Settings
from tasks.core.urls import is_sentinel_url, parse_sentinel_url
from tasks.state.clients import redis_client

#: Sentinels a set needs to elect a new primary while one host is down.
MIN_SENTINELS = 3
SENTINEL_FIX = (
    "run three sentinels (redis-server sentinel.conf --sentinel) on separate hosts, "
    "quorum 2, and list every one in the URL: sentinel://h1:26379;sentinel://h2:26379;..."
)


def sentinel_checks(settings: Settings) -> list[Check]:
    """The Sentinel checks for ``REDIS_URL`` (or the broker's URL), or none without Sentinel."""
    url = next((u for u in (settings.redis_url, settings.broker_url) if is_sentinel_url(u)), None)
    if url is None:
        return []
    checks = [check_sentinels(settings, url)]
    try:
        primary = redis_client(
            settings, url, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT
        )
        replication = primary.info("replication")
    except redis.RedisError as err:
        return [*checks, Check("replicas", None, f"no primary to ask: {type(err).__name__}")]
    checks.append(check_replicas(settings, replication))
    checks += check_primary_config(primary)
    return checks


def check_sentinels(settings: Settings, url: str) -> Check:
    """Enough sentinels answer, agree on the primary, and can reach their quorum."""
    name = settings.redis_master_name or ""
    answered: list[dict[str, Any]] = []
    quorum_problem = ""
    for host, port in parse_sentinel_url(url).sentinels:
        client = redis.Redis(
            host=host,
            port=port,
            password=settings.sentinel_password,
            socket_timeout=TIMEOUT,
            socket_connect_timeout=TIMEOUT,
        )
        try:
            state = client.sentinel_master(name)
        except redis.RedisError:
            continue  # not listening, or no primary of that name (told apart below: none knows)
        if isinstance(state, dict):
            answered.append(state)
        try:
            client.sentinel_ckquorum(name)
        except redis.ResponseError as err:  # NOQUORUM: a failover could not be authorized
            quorum_problem = quorum_problem or str(err)
        except redis.RedisError:
            continue
    listed = len(parse_sentinel_url(url).sentinels)
    if not answered:
        return Check(
            "sentinel",
            False,
            f"none of the {listed} sentinel(s) knows a primary named {name!r}",
            "check ENGAGE_REDIS_MASTER_NAME, ENGAGE_SENTINEL_PASSWORD and the URL; " + SENTINEL_FIX,
        )
    first = answered[0]
    seen = int(first.get("num-other-sentinels", 0)) + 1
    detail = (
        f"{len(answered)} of {listed} listed sentinel(s) answer; they see {seen} sentinel(s), "
        f"quorum {first.get('quorum')}, primary {first.get('ip')}:{first.get('port')}"
    )
    if quorum_problem or len(answered) < MIN_SENTINELS or seen < MIN_SENTINELS:
        problem = f": {quorum_problem}" if quorum_problem else ""
        return Check("sentinel", False, detail + problem, SENTINEL_FIX)
    return Check("sentinel", True, detail)


def check_replicas(settings: Settings, replication: dict[str, Any]) -> Check:
    """The primary has at least ``ENGAGE_REPLICA_ACKS`` replicas, and the barrier is on."""
    connected = int(replication.get("connected_slaves", 0))
    acks = settings.replica_acks
    detail = f"{connected} replica(s) connected; ENGAGE_REPLICA_ACKS={acks}"
    if acks == 0:
        return Check(
            "replicas",
            False,
            detail + ": a failover may lose a lease and send a message twice",
            "set ENGAGE_REPLICA_ACKS=1 (the default with sentinel://)",
        )
    if connected < acks:
        return Check(
            "replicas",
            False,
            detail + ": every send is held back until enough replicas are connected",
            "start the replicas (replicaof <primary>), or lower ENGAGE_REPLICA_ACKS",
        )
    return Check("replicas", True, detail)


#: The primary's settings this package relies on: (name, is it right, the fix).
EXPECTED_CONFIG = (
    (
        "min-replicas-to-write",
        lambda v: int(v or 0) >= 1,
        "set min-replicas-to-write 1 and min-replicas-max-lag 10: a primary cut off from its "
        "replicas then stops taking writes that a failover would throw away",
    ),
    (
        "appendonly",
        lambda v: v == "yes",
        "set appendonly yes: a server restarted from an old snapshot forgets claims and leases",
    ),
    (
        "maxmemory-policy",
        lambda v: v == "noeviction",
        "set maxmemory-policy noeviction: evicting a ledger record lets a send go twice",
    ),
)


def check_primary_config(primary: redis.Redis) -> list[Check]:
    """``min-replicas-to-write``, persistence and ``maxmemory-policy`` on the primary."""
    checks = []
    for name, right, fix in EXPECTED_CONFIG:
        try:
            value = primary.config_get(name).get(name)
        except redis.RedisError as err:
            checks.append(Check(name, None, f"could not read it (CONFIG GET: {err})"))
            continue
        text = value.decode() if isinstance(value, bytes) else str(value)
        ok = bool(right(text))
        checks.append(Check(name, ok, f"{text} on the primary", "" if ok else fix))
    return checks
