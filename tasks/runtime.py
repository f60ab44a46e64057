"""The per-process objects the tasks use: Redis, the Engage client and the stores built on them.

Built once per worker process on first use (after the prefork fork, so no socket is shared
between processes), from the settings object that ``celeryconfig.py`` loaded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from redis import Redis

from tasks.auth_circuit import AuthCircuit
from tasks.contact_cache import ContactCache
from tasks.dead_letters import DeadLetterStore
from tasks.delivery_ledger import DeliveryLedger, RedisKeys
from tasks.engage_client import EngageClient, build_client
from tasks.rate_limit import RateLimiter
from tasks.settings import Settings


@dataclass
class Runtime:
    """Everything a task needs, built from one :class:`Settings`."""

    settings: Settings
    redis: Redis
    engage: EngageClient
    ledger: DeliveryLedger
    dead_letters: DeadLetterStore
    auth: AuthCircuit
    rate_limiter: RateLimiter
    contacts: ContactCache

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        redis_client: Redis | None = None,
        engage: EngageClient | None = None,
    ) -> Runtime:
        """Wire the objects; tests pass fakeredis or a client of their own."""
        client = redis_client or Redis.from_url(
            settings.redis_url,
            socket_timeout=10,
            socket_connect_timeout=5,
            health_check_interval=30,
        )
        keys = RedisKeys(settings.key_prefix)
        return cls(
            settings=settings,
            redis=client,
            engage=engage or build_client(settings),
            ledger=DeliveryLedger(
                client, keys=keys, retention=settings.key_retention, lease=settings.lease_seconds
            ),
            dead_letters=DeadLetterStore(
                client,
                keys=keys,
                max_entries=settings.dlq_max_entries,
                max_age=settings.dlq_max_age,
                retention=settings.key_retention,
            ),
            auth=AuthCircuit(
                client,
                prefix=settings.key_prefix,
                username=settings.engage_username,
                password=settings.engage_password,
            ),
            rate_limiter=RateLimiter(
                client,
                key=f"{settings.key_prefix}:rate:engage",
                rate=settings.rate_limit,
                burst=settings.rate_burst,
            ),
            contacts=ContactCache(
                client, prefix=settings.key_prefix, ttl=settings.contact_cache_ttl
            ),
        )


_current: tuple[int, Runtime] | None = None


def current_runtime(settings: Settings) -> Runtime:
    """This process's runtime, built on first use and again after a fork."""
    global _current  # noqa: PLW0603  (one runtime per process is the point)
    pid = os.getpid()
    if _current is None or _current[0] != pid:
        _current = (pid, Runtime.build(settings))
    return _current[1]


def install_runtime(runtime: Runtime | None) -> None:
    """Use ``runtime`` in this process (tests); None forgets it."""
    global _current  # noqa: PLW0603
    _current = None if runtime is None else (os.getpid(), runtime)
