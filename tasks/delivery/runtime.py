"""The per-process objects the steps use: Redis, the Engage client and the stores built on them.

Built once per process on first use (after the prefork fork, so no socket is shared between
processes), from the settings object the Celery configuration loaded. The Engage client and the
credentials flag are built on first use too: a web process that only enqueues never needs the
Engage settings.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property

from redis import Redis

from tasks.core.settings import Settings
from tasks.delivery import metrics
from tasks.engage import EngageClient, build_client
from tasks.state.attempts import AttemptHistory
from tasks.state.callback_outbox import CallbackOutbox
from tasks.state.clients import redis_client as connect
from tasks.state.contact_cache import ContactCache
from tasks.state.credentials import AuthCircuit
from tasks.state.dead_letters import DeadLetterStore
from tasks.state.deferrals import DeferredSends
from tasks.state.hashing import KeyHasher
from tasks.state.keys import RedisKeys
from tasks.state.lane_consumers import LaneConsumers
from tasks.state.ledger import DeliveryLedger
from tasks.state.policy_gate import PolicyGate
from tasks.state.rate_limit import RateLimiter
from tasks.state.recipient_caps import RecipientCaps
from tasks.state.redis_safety import EvictionGuard
from tasks.state.replication import ReplicaBarrier
from tasks.state.suppressions import SuppressionList


@dataclass
class Runtime:
    """Everything a step needs, built from one :class:`Settings`."""

    settings: Settings
    redis: Redis
    #: The names of every key the stores (and housekeeping) write.
    keys: RedisKeys
    #: Keyed digests for key names derived from identifiers (the secret is read on first use).
    hasher: KeyHasher
    ledger: DeliveryLedger
    dead_letters: DeadLetterStore
    rate_limiter: RateLimiter
    contacts: ContactCache
    #: Completion callbacks due and not yet published.
    callbacks: CallbackOutbox
    #: The sending policy's stores: opt-outs, caps, quiet-hours deferrals, the gate before a send.
    suppressions: SuppressionList
    caps: RecipientCaps
    deferrals: DeferredSends
    gate: PolicyGate
    #: Which lanes have a worker (each worker reports its own).
    lane_consumers: LaneConsumers
    #: An Engage client given by a test; otherwise built from the settings on first use.
    engage_override: EngageClient | None = field(default=None, repr=False)

    @cached_property
    def engage(self) -> EngageClient:
        """The Engage client the settings ask for (ConfigurationError without Engage settings)."""
        if self.engage_override is not None:
            return self.engage_override
        return build_client(
            self.settings.require_engage(),
            connect_timeout=self.settings.connect_timeout,
            read_timeout=self.settings.read_timeout,
            observe=metrics.observe_call,
        )

    @cached_property
    def auth(self) -> AuthCircuit:
        """The flag that parks every send once Engage refused these credentials."""
        engage = self.settings.require_engage()
        return AuthCircuit(
            self.redis,
            keys=self.keys,
            hasher=self.hasher,
            username=engage.username,
            password=engage.password,
        )

    @cached_property
    def attempts(self) -> AttemptHistory:
        """Each send's last Engage calls, for the console's timeline."""
        return AttemptHistory(self.redis, keys=self.keys, retention=self.settings.key_retention)

    @cached_property
    def eviction_guard(self) -> EvictionGuard:
        """Refuses enqueues while the ledger's Redis may evict keys (checked once a minute)."""
        return EvictionGuard(self.redis, self.settings.redis_url)

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        redis_client: Redis | None = None,
        engage: EngageClient | None = None,
    ) -> Runtime:
        """Wire the objects; tests pass fakeredis or a client of their own."""
        client = redis_client or connect(
            settings,
            socket_timeout=10,
            socket_connect_timeout=5,
            health_check_interval=30,
        )
        keys = RedisKeys(settings.key_prefix)
        hasher = KeyHasher(client, keys=keys)
        return cls(
            settings=settings,
            redis=client,
            keys=keys,
            hasher=hasher,
            ledger=DeliveryLedger(
                client,
                keys=keys,
                retention=settings.key_retention,
                lease=settings.lease_seconds,
                barrier=ReplicaBarrier(
                    client,
                    replicas=settings.replica_acks,
                    timeout_ms=settings.replica_ack_timeout,
                ),
            ),
            dead_letters=DeadLetterStore(
                client,
                keys=keys,
                max_entries=settings.dlq_max_entries,
                max_age=settings.dlq_max_age,
                retention=settings.key_retention,
            ),
            rate_limiter=RateLimiter(
                client, keys=keys, rate=settings.rate_limit, burst=settings.rate_burst
            ),
            contacts=ContactCache(client, keys=keys, hasher=hasher, ttl=settings.contact_cache_ttl),
            callbacks=CallbackOutbox(client, keys=keys),
            suppressions=SuppressionList(client, keys=keys, hasher=hasher),
            caps=RecipientCaps(client, keys=keys, hasher=hasher, caps=settings.policy.caps),
            deferrals=DeferredSends(client, keys=keys, retention=settings.key_retention),
            gate=PolicyGate(
                client, keys=keys, retention=settings.key_retention, lease=settings.lease_seconds
            ),
            lane_consumers=LaneConsumers(client, keys=keys),
            engage_override=engage,
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
