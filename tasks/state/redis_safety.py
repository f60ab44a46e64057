"""What the ledger needs from the Redis it lives in: no eviction, and data that survives a restart.

An evicting Redis (``maxmemory`` with ``allkeys-*`` or ``volatile-*``: every ledger record has a
TTL, so the volatile policies evict them too) can drop a ``sent`` record and the HMAC secret
under memory pressure; the next enqueue or beat tick under that key then sends again. So
workers refuse to start and the API refuses to enqueue unless ``maxmemory-policy`` is
``noeviction`` (:class:`EvictionGuard`); ``engage-sms doctor`` shows the policy and persistence.
Read with ``INFO``, which managed Redis services allow where ``CONFIG`` is often renamed away;
a server that answers neither is taken as it is (``None``: cannot tell).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis

from tasks.core.errors import ConfigurationError
from tasks.core.urls import redact_url

#: The only eviction policy under which Redis never drops a key of ours.
NOEVICTION = "noeviction"
#: How long an enqueueing process trusts its last look at the policy (seconds).
RECHECK_EVERY = 60.0


@dataclass(frozen=True)
class RedisSafety:
    """What Redis says about eviction and persistence (None where it would not say)."""

    policy: str | None
    aof: bool | None
    #: The RDB snapshot rule (``CONFIG GET save``), "" when snapshots are off.
    rdb_save: str | None


def read_safety(client: redis.Redis) -> RedisSafety:
    """The eviction policy and persistence of ``client``'s server."""
    policy = aof = None
    try:
        memory = client.info("memory")
        persistence = client.info("persistence")
    except redis.ResponseError:  # INFO renamed or refused (ACL): cannot tell
        pass
    else:
        policy = memory.get("maxmemory_policy")
        aof = bool(persistence["aof_enabled"]) if "aof_enabled" in persistence else None
    try:
        rdb_save: str | None = str(client.config_get("save").get("save", ""))
    except redis.ResponseError:
        rdb_save = None
    return RedisSafety(None if policy is None else str(policy), aof, rdb_save)


def eviction_problem(policy: str | None, url: str) -> str | None:
    """Why a ledger in this Redis is unsafe, in one line naming the fix; None if it is safe."""
    if policy is None or policy == NOEVICTION:
        return None
    return (
        f"the Redis at {redact_url(url)} may evict keys (maxmemory-policy {policy}), and a "
        f"send whose record was evicted would be sent again: set maxmemory-policy noeviction "
        f"(CONFIG SET maxmemory-policy noeviction, and in redis.conf)"
    )


def check_no_eviction(client: redis.Redis, url: str) -> None:
    """ConfigurationError (naming REDIS_URL and the fix) unless Redis never evicts our keys."""
    problem = eviction_problem(read_safety(client).policy, url)
    if problem is not None:
        raise ConfigurationError("REDIS_URL", problem)


class EvictionGuard:
    """:func:`check_no_eviction` for every enqueue, at most one ``INFO`` a minute per process."""

    def __init__(self, client: redis.Redis, url: str) -> None:
        self._client = client
        self._url = url
        self._checked_at: float | None = None

    def check(self) -> None:
        """Raise ConfigurationError while the Redis may evict our keys."""
        now = time.monotonic()
        if self._checked_at is not None and now - self._checked_at < RECHECK_EVERY:
            return
        check_no_eviction(self._client, self._url)
        self._checked_at = now
