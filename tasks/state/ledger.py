"""The delivery ledger: one Redis hash per idempotency key, a small state machine.

    queued ──> sending (leased) ──> sent
      ^  │          │   └────────> dead_lettered ──(replay)──> queued
      │  │          v                    ^
      │  └──> retrying <─────────────────┘ (from any non-sent state)
      └─────────┘

Every transition is one Lua script (``lua/*.lua``), so concurrent enqueues, redelivered tasks and
replays see one truth. ``sent`` is final: nothing moves a sent record anywhere else.

Every stored time (leases, retry times, the in-flight scores the sweep reads) is the Redis
server's clock (``TIME``, read inside the scripts), never a worker's: one worker with a wrong
clock cannot take another's live lease for a dead one, nor make a waiting send look stuck.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis

from tasks.core.request import SendRequest
from tasks.core.send_options import DEFAULT_PRIORITY, Priority
from tasks.state import scripts
from tasks.state.clock import server_time
from tasks.state.enums import ClaimOutcome, SendState, StartOutcome
from tasks.state.keys import RedisKeys
from tasks.state.records import read_record, shown_status, text
from tasks.state.replication import ReplicaBarrier


@dataclass(frozen=True)
class Claim:
    """The result of claiming a key at enqueue: new, already there, or taken by another request."""

    outcome: ClaimOutcome
    state: SendState
    task_id: str
    #: False when fewer replicas than ``ENGAGE_REPLICA_ACKS`` acknowledged the record in time.
    held: bool = True
    #: Replicas that acknowledged it (None: no barrier).
    acks: int | None = None


@dataclass(frozen=True)
class ClaimPolicy:
    """What the sending policy adds to a new record (README: Sending policy)."""

    #: Seconds from the claim, on the Redis clock; or an absolute deadline (epoch s).
    expires_in: float | None = None
    send_by: float | None = None
    #: The opt-out list's digest of the recipient; None: this lane is not checked.
    suppression: str | None = None
    #: Quiet hours: the record is created ``deferred`` until then (epoch s).
    not_before: float | None = None
    #: Create the contact in Engage when it does not exist.
    create_contact: bool = False


@dataclass(frozen=True)
class SendStart:
    """What :meth:`DeliveryLedger.begin_send` found: go ahead, or why not."""

    outcome: StartOutcome
    attempts: int
    #: ``interrupted``: when the lapsed lease of the delivery that died ran out (Redis clock).
    lapsed_at: float | None = None
    #: False when fewer replicas than ``ENGAGE_REPLICA_ACKS`` acknowledged the lease in time:
    #: a failover now could lose it, so Engage must not be called on it.
    held: bool = True
    #: Replicas that acknowledged it (None: no barrier).
    acks: int | None = None


@dataclass(frozen=True)
class StepStart:
    """What :meth:`DeliveryLedger.begin_step` found, in one round trip."""

    #: The record's state; None when the key is unknown (nothing was counted then).
    state: SendState | None
    #: How many times this task attempt has been delivered, this one included.
    deliveries: int
    #: The values of the ``peek`` keys, in order (None where a key does not exist).
    peeked: list[str | None]
    #: The record's deadline passed (on the Redis clock).
    expired: bool = False


@dataclass(frozen=True)
class Sent:
    """What :meth:`DeliveryLedger.mark_sent` found in the record it marked sent."""

    #: Seconds since the send was queued (enqueued, or replayed); None for a record without it.
    waited: float | None
    priority: Priority
    #: The completion callback filed by this marking (None: none asked, or it was sent already).
    callback: str | None


class DeliveryLedger:
    """Idempotency records in Redis: who may send, and what happened."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        keys: RedisKeys,
        retention: float,
        lease: float,
        barrier: ReplicaBarrier | None = None,
    ) -> None:
        self._redis = client
        #: The claim and the lease wait for replicas through it (none: no waiting).
        self.barrier = barrier or ReplicaBarrier(client, replicas=0, timeout_ms=1)
        self._keys = keys
        self._retention_ms = int(retention * 1000)
        self._lease = lease
        self._claim = scripts.register(client, "claim")
        self._release = scripts.register(client, "release_unpublished")
        self._step = scripts.register(client, "begin_step")
        self._begin = scripts.register(client, "begin_send")
        self._sent = scripts.register(client, "mark_sent")
        self._retrying = scripts.register(client, "mark_retrying")
        self._release_unsent = scripts.register(client, "release_unsent")
        self._resolved = scripts.register(client, "mark_resolved")
        self._cancel = scripts.register(client, "cancel")
        self._count_failure = scripts.register(client, "count_failure")
        self._republish = scripts.register(client, "republish")

    def _record_keys(self, key: str) -> list[str]:
        return [self._keys.send(key), self._keys.inflight]

    def claim(
        self,
        key: str,
        request: SendRequest,
        task_ids: list[str],
        *,
        priority: Priority = DEFAULT_PRIORITY,
        on_done: str | None = None,
        policy: ClaimPolicy | None = None,
    ) -> Claim:
        """Create the record for a new send, or report the existing one (or a conflict).

        The lane and the completion callback are kept in the record (so retries, replays and
        the sweep find them); an existing record keeps its own. With ``policy``, the record
        keeps the masked recipient and message id (what a slim final record shows), the
        deadline, and is created ``suppressed`` (final) or ``deferred`` when the policy says so.
        """
        k = self._keys
        extra: list[str | int] = []
        if policy is not None:
            extra = [
                request.identifier.masked(),
                request.message_id,
                "" if policy.expires_in is None else repr(policy.expires_in),
                "" if policy.send_by is None else repr(policy.send_by),
                policy.suppression or "",
                "" if policy.not_before is None else repr(policy.not_before),
                "1" if policy.create_contact else "0",
            ]
        written = self.barrier.run(
            self._claim,
            [*self._record_keys(key), k.suppressed, k.callbacks, k.deferred],
            [
                request.fingerprint(),
                json.dumps(request.to_dict()),
                task_ids[-1],
                json.dumps(task_ids),
                self._retention_ms,
                key,
                priority,
                on_done or "",
                *extra,
            ],
        )
        outcome, state, task_id = written.reply
        return Claim(
            ClaimOutcome(text(outcome)),
            SendState(text(state)),
            text(task_id),
            held=written.held,
            acks=written.acks,
        )

    def release_unpublished(self, key: str, task_id: str) -> bool:
        """Undo a claim whose task was not published, so a retried enqueue starts clean."""
        return bool(self._release(keys=self._record_keys(key), args=[task_id, key]))

    def begin_step(self, key: str, attempt: str, peek: Sequence[str] = ()) -> StepStart:
        """The state, this delivery counted (see :meth:`count_delivery`), and ``peek`` keys read.

        One round trip for what a step checks before it calls Engage. The peeked keys are
        other modules' (the credentials flag, the contact cache); the ledger only reads them.
        """
        reply = self._step(keys=[self._keys.send(key), *peek], args=[f"deliveries:{attempt}"])
        state, deliveries = reply[0], reply[1]
        peeked = [None if value is None else text(value) for value in reply[2 : len(peek) + 2]]
        expired = len(reply) > len(peek) + 2 and int(reply[-1]) == 1
        return StepStart(
            None if state is None else SendState(text(state)), int(deliveries), peeked, expired
        )

    def begin_send(
        self,
        key: str,
        owner: str,
        contact_id: int,
        *,
        resend_interrupted: bool = False,
        blocked_by: Sequence[str] = (),
        lease_token: str = "",
    ) -> SendStart:
        """Take the send lease; ``owner`` names this delivery attempt (task id and retry).

        When any key in ``blocked_by`` exists (the credentials flag), nothing is taken and the
        outcome is ``blocked``. ``lease_token`` names this taking of the lease, so that
        :meth:`release_unsent` gives back this lease and no later one, even if this call's
        answer never came.
        """
        written = self.barrier.run(
            self._begin,
            [*self._record_keys(key), *blocked_by],
            [owner, self._lease, "1" if resend_interrupted else "0", contact_id, key, lease_token],
        )
        outcome, attempts, *lapsed = written.reply
        return SendStart(
            StartOutcome(text(outcome)),
            int(attempts),
            float(text(lapsed[0])) if lapsed else None,
            held=written.held,
            acks=written.acks,
        )

    def mark_sent(self, key: str) -> Sent | None:
        """Engage accepted the send: final (and out of the dead-letter store, if it was there).

        A completion callback the send asked for is filed in ``{p}:callbacks`` by the same
        script, so it is published at least once even if this process dies right after.
        None when the record is gone: nothing is written (the caller writes it in full first).
        """
        k = self._keys
        reply = self._sent(
            keys=[k.send(key), k.inflight, k.dlq, k.dlq_entries, k.dlq_reasons, k.callbacks],
            args=[self._retention_ms, key],
        )
        if len(reply) > 3:
            return None
        waited, priority, callback = reply
        return Sent(
            waited=None if waited is None else max(0.0, float(text(waited))),
            priority=DEFAULT_PRIORITY if priority is None else Priority(text(priority)),
            callback=None if callback is None else text(callback),
        )

    def mark_retrying(self, key: str, owner: str, error: str, retry_in: float) -> bool:
        """Give the lease back after a failure that proves nothing was sent; a retry follows."""
        return bool(self._retrying(keys=self._record_keys(key), args=[owner, error, retry_in, key]))

    def release_unsent(
        self, key: str, owner: str, lease_token: str, error: str, retry_in: float
    ) -> bool:
        """Give back the lease ``begin_send(lease_token=...)`` took when no request went out
        under it (Redis failed before sendSingle); a retry follows. False when the record is not
        sending under that very lease: nothing changes."""
        return bool(
            self._release_unsent(
                keys=self._record_keys(key), args=[owner, lease_token, error, retry_in, key]
            )
        )

    def mark_resolved(
        self, key: str, contact_id: int, *, cache: tuple[str, int] | None = None
    ) -> None:
        """The lookup succeeded: keep the contact id and show the send is moving.

        ``cache``: the contact cache's key and TTL (ms) for the identifier
        (:meth:`~tasks.state.contact_cache.ContactCache.entry`), written in the same script.
        """
        keys = self._record_keys(key)
        args: list[int | str] = [contact_id, key]
        if cache is not None:
            keys.append(cache[0])
            args.append(cache[1])
        self._resolved(keys=keys, args=args)

    def count_failure(self, key: str, stage: str) -> int:
        """Failed Engage calls of one step so far (waiting for a rate-limit slot is no failure)."""
        return int(self._count_failure(keys=[self._keys.send(key)], args=[f"failures:{stage}"]))

    def cancel(self, key: str) -> str:
        """Stop a send that has not started: ``cancelled_now``, or the state that kept it
        (``sending``, ``sent``, ``dead_lettered``, ``cancelled``), or ``unknown``."""
        k = self._keys
        return text(
            self._cancel(
                keys=[k.send(key), k.inflight, k.callbacks],
                args=[key, self._retention_ms],
            )
        )

    def unfinished(self) -> list[str]:
        """Every key not yet final (queued, retrying or sending), oldest change first."""
        return [text(k) for k in self._redis.zrange(self._keys.inflight, 0, -1)]

    def lanes_of(self, keys: Sequence[str]) -> list[str | None]:
        """The lane each key's record names (None without a record), in one round trip."""
        pipe = self._redis.pipeline(transaction=False)
        for key in keys:
            pipe.hget(self._keys.send(key), "priority")
        return [None if v is None else text(v) for v in pipe.execute()]

    def count_delivery(self, key: str, attempt: str) -> int:
        """How many times this task attempt was delivered (more than once: a worker died)."""
        return int(self._redis.hincrby(self._keys.send(key), f"deliveries:{attempt}", 1))

    def state(self, key: str) -> SendState | None:
        """The record's state, or None when the key is unknown."""
        value = self._redis.hget(self._keys.send(key), "state")
        return None if value is None else SendState(text(value))

    def record(self, key: str) -> dict[str, str]:
        """The raw record (empty when unknown)."""
        return read_record(self._redis, self._keys, key)

    def forget_inflight(self, key: str) -> None:
        """Drop ``key`` from the in-flight set (its record expired: nothing is left to track)."""
        self._redis.zrem(self._keys.inflight, key)

    def status(self, key: str) -> dict[str, Any]:
        """The record as shown to callers and operators: masked, with ISO timestamps."""
        return shown_status(key, self.record(key))

    def republish(self, key: str, task_ids: list[str], idle_limit: float) -> bool:
        """Give a lost send new task ids if it is still queued or retrying and idle that long.

        True: publish it now under ``task_ids``. A copy under the old ids would share the lease
        owner of the original, which kombu may still hand out (``lua/republish.lua``).
        """
        return bool(
            self._republish(
                keys=self._record_keys(key),
                args=[task_ids[-1], json.dumps(task_ids), idle_limit, key],
            )
        )

    def now(self) -> float:
        """The Redis server's clock: the one every stored time of the ledger is on."""
        return server_time(self._redis)

    def stale_inflight(
        self, older_than: float, limit: int = 1000, *, now: float | None = None
    ) -> list[str]:
        """Keys not finished and untouched for ``older_than`` seconds (stuck sends)."""
        cutoff = (self.now() if now is None else now) - older_than
        raw = self._redis.zrangebyscore(self._keys.inflight, "-inf", cutoff, start=0, num=limit)
        return [text(k) for k in raw]
