"""The delivery ledger: one Redis hash per idempotency key, a small state machine.

    queued ──> sending (leased) ──> sent
      ^  │          │   └────────> dead_lettered ──(replay)──> queued
      │  │          v                    ^
      │  └──> retrying <─────────────────┘ (from any non-sent state)
      └─────────┘

Every transition is one Lua script, so concurrent enqueues, redelivered tasks and replays see one
truth. ``sent`` is final: nothing moves a sent record anywhere else.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis

from tasks.masking import mask_value
from tasks.request import SendRequest

TERMINAL_STATES = ("sent", "dead_lettered")


@dataclass(frozen=True)
class RedisKeys:
    """Names of the ledger's and the dead-letter store's Redis keys, under one prefix.

    The other stores name their own keys under the same prefix (``auth_failed:``, ``contact:``,
    ``rate:``, ``housekeeping:``).
    """

    prefix: str = "engage"

    def send(self, key: str) -> str:
        """The ledger hash of one idempotency key."""
        return f"{self.prefix}:send:{key}"

    @property
    def inflight(self) -> str:
        """Sorted set of keys not yet sent or dead-lettered, scored by last change."""
        return f"{self.prefix}:inflight"

    @property
    def dlq(self) -> str:
        """Sorted set of dead-lettered keys, scored by when they were dead-lettered."""
        return f"{self.prefix}:dlq"

    @property
    def dlq_entries(self) -> str:
        """Hash of dead-letter entries (JSON) by idempotency key."""
        return f"{self.prefix}:dlq:entries"

    @property
    def dlq_reasons(self) -> str:
        """Hash of dead-letter reasons by idempotency key (depth by reason without parsing)."""
        return f"{self.prefix}:dlq:reasons"


@dataclass(frozen=True)
class Claim:
    """The result of claiming a key at enqueue: new, already there, or taken by another request."""

    outcome: str  # "created" | "exists" | "conflict"
    state: str
    task_id: str


@dataclass(frozen=True)
class SendStart:
    """What :meth:`DeliveryLedger.begin_send` found: go ahead, or why not."""

    outcome: str  # "acquired" | "sent" | "dead_lettered" | "busy" | "interrupted" | "blocked"
    attempts: int


@dataclass(frozen=True)
class StepStart:
    """What :meth:`DeliveryLedger.begin_step` found, in one round trip."""

    #: The record's state; None when the key is unknown (nothing was counted then).
    state: str | None
    #: How many times this task attempt has been delivered, this one included.
    deliveries: int
    #: The values of the ``peek`` keys, in order (None where a key does not exist).
    peeked: list[str | None]


_CLAIM = """
local k = KEYS[1]
if redis.call('EXISTS', k) == 1 then
  local f = redis.call('HMGET', k, 'fingerprint', 'state', 'task_id')
  if f[1] ~= ARGV[1] then return {'conflict', f[2], f[3]} end
  return {'exists', f[2], f[3]}
end
redis.call('HSET', k, 'state', 'queued', 'fingerprint', ARGV[1], 'request', ARGV[2],
  'task_id', ARGV[3], 'task_ids', ARGV[4], 'created_at', ARGV[5], 'updated_at', ARGV[5],
  'attempts', 0)
redis.call('PEXPIRE', k, ARGV[6])
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[7])
return {'created', 'queued', ARGV[3]}
"""

_RELEASE_UNPUBLISHED = """
if redis.call('HGET', KEYS[1], 'task_id') == ARGV[1]
   and redis.call('HGET', KEYS[1], 'state') == 'queued' then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[2])
  return 1
end
return 0
"""

_BEGIN_STEP = """
local state = redis.call('HGET', KEYS[1], 'state')
local deliveries = 0
if state then deliveries = redis.call('HINCRBY', KEYS[1], ARGV[1], 1) end
local reply = {state, deliveries}
for i = 2, #KEYS do reply[i + 1] = redis.call('GET', KEYS[i]) end
return reply
"""

_BEGIN_SEND = """
local k = KEYS[1]
local f = redis.call('HMGET', k, 'state', 'lease_owner', 'lease_until', 'attempts')
local state, attempts = f[1], tonumber(f[4] or '0')
if not state then return {'missing', 0} end
if state == 'sent' or state == 'dead_lettered' then return {state, attempts} end
for i = 3, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then return {'blocked', attempts} end
end
if state == 'sending' then
  -- The same attempt delivered again, or a lapsed lease, means the holder died mid-send.
  local interrupted = f[2] == ARGV[1] or tonumber(f[3]) <= tonumber(ARGV[2])
  if not interrupted then return {'busy', attempts} end
  if ARGV[4] ~= '1' then return {'interrupted', attempts} end
end
attempts = attempts + 1
redis.call('HSET', k, 'state', 'sending', 'lease_owner', ARGV[1],
  'lease_until', tonumber(ARGV[2]) + tonumber(ARGV[3]), 'attempts', attempts,
  'updated_at', ARGV[2], 'contact_id', ARGV[5])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[6])
return {'acquired', attempts}
"""

_MARK_SENT = """
local k = KEYS[1]
redis.call('HSET', k, 'state', 'sent', 'sent_at', ARGV[1], 'updated_at', ARGV[1])
redis.call('HDEL', k, 'lease_owner', 'lease_until', 'reason', 'detail')
redis.call('PEXPIRE', k, ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[3])
-- A send can only have been dead-lettered meanwhile as "outcome unknown": now it is known.
redis.call('ZREM', KEYS[3], ARGV[3])
redis.call('HDEL', KEYS[4], ARGV[3])
return 1
"""

_RETRYING = """
local k = KEYS[1]
local state = redis.call('HGET', k, 'state')
if state == 'sent' or state == 'dead_lettered' or not state then return 0 end
if state == 'sending' and redis.call('HGET', k, 'lease_owner') ~= ARGV[1] then return 0 end
redis.call('HSET', k, 'state', 'retrying', 'updated_at', ARGV[2], 'last_error', ARGV[3],
  'retry_at', ARGV[4])
redis.call('HSETNX', k, 'first_failure_at', ARGV[2])
redis.call('HDEL', k, 'lease_owner', 'lease_until')
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[5])
return 1
"""


_RESOLVED = """
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'queued' and state ~= 'retrying' then return 0 end
redis.call('HSET', KEYS[1], 'contact_id', ARGV[1], 'updated_at', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
return 1
"""


class DeliveryLedger:
    """Idempotency records in Redis: who may send, and what happened."""

    def __init__(
        self, client: redis.Redis, *, keys: RedisKeys, retention: float, lease: float
    ) -> None:
        self._redis = client
        self._keys = keys
        self._retention_ms = int(retention * 1000)
        self._lease = lease
        self._claim = client.register_script(_CLAIM)
        self._release = client.register_script(_RELEASE_UNPUBLISHED)
        self._step = client.register_script(_BEGIN_STEP)
        self._begin = client.register_script(_BEGIN_SEND)
        self._sent = client.register_script(_MARK_SENT)
        self._retrying = client.register_script(_RETRYING)
        self._resolved = client.register_script(_RESOLVED)

    def claim(self, key: str, request: SendRequest, task_ids: list[str]) -> Claim:
        """Create the record for a new send, or report the existing one (or a conflict)."""
        outcome, state, task_id = self._claim(
            keys=[self._keys.send(key), self._keys.inflight],
            args=[
                request.fingerprint(),
                json.dumps(request.to_dict()),
                task_ids[-1],
                json.dumps(task_ids),
                _now(),
                self._retention_ms,
                key,
            ],
        )
        return Claim(text(outcome), text(state), text(task_id))

    def release_unpublished(self, key: str, task_id: str) -> bool:
        """Undo a claim whose task was not published, so a retried enqueue starts clean."""
        return bool(
            self._release(keys=[self._keys.send(key), self._keys.inflight], args=[task_id, key])
        )

    def begin_step(self, key: str, attempt: str, peek: Sequence[str] = ()) -> StepStart:
        """The state, this delivery counted (see :meth:`count_delivery`), and ``peek`` keys read.

        One round trip for what a step checks before it calls Engage. The peeked keys are
        other modules' (the credentials flag, the contact cache); the ledger only reads them.
        """
        reply = self._step(keys=[self._keys.send(key), *peek], args=[f"deliveries:{attempt}"])
        state, deliveries = reply[0], reply[1]
        peeked = [None if value is None else text(value) for value in reply[2:]]
        return StepStart(None if state is None else text(state), int(deliveries), peeked)

    def begin_send(
        self,
        key: str,
        owner: str,
        contact_id: int,
        *,
        resend_interrupted: bool = False,
        blocked_by: Sequence[str] = (),
    ) -> SendStart:
        """Take the send lease; ``owner`` names this delivery attempt (task id and retry).

        When any key in ``blocked_by`` exists (the credentials flag), nothing is taken and the
        outcome is ``blocked``.
        """
        outcome, attempts = self._begin(
            keys=[self._keys.send(key), self._keys.inflight, *blocked_by],
            args=[owner, _now(), self._lease, "1" if resend_interrupted else "0", contact_id, key],
        )
        return SendStart(text(outcome), int(attempts))

    def mark_sent(self, key: str) -> None:
        """Engage accepted the send: final."""
        self._sent(
            keys=[
                self._keys.send(key),
                self._keys.inflight,
                self._keys.dlq,
                self._keys.dlq_entries,
            ],
            args=[_now(), self._retention_ms, key],
        )

    def mark_retrying(self, key: str, owner: str, error: str, retry_in: float) -> bool:
        """Give the lease back after a failure that proves nothing was sent; a retry follows."""
        now = time.time()
        return bool(
            self._retrying(
                keys=[self._keys.send(key), self._keys.inflight],
                args=[owner, repr(now), error, repr(now + retry_in), key],
            )
        )

    def mark_resolved(self, key: str, contact_id: int) -> None:
        """The lookup succeeded: keep the contact id and show the send is moving."""
        self._resolved(
            keys=[self._keys.send(key), self._keys.inflight], args=[contact_id, _now(), key]
        )

    def count_failure(self, key: str, stage: str) -> int:
        """Failed Engage calls of one step so far (waiting for a rate-limit slot is no failure)."""
        return int(self._redis.hincrby(self._keys.send(key), f"failures:{stage}", 1))

    def count_delivery(self, key: str, attempt: str) -> int:
        """How many times this task attempt was delivered (more than once: a worker died)."""
        return int(self._redis.hincrby(self._keys.send(key), f"deliveries:{attempt}", 1))

    def state(self, key: str) -> str | None:
        """The record's state, or None when the key is unknown."""
        value = self._redis.hget(self._keys.send(key), "state")
        return None if value is None else text(value)

    def record(self, key: str) -> dict[str, str]:
        """The raw record (empty when unknown)."""
        return read_record(self._redis, self._keys, key)

    def forget_inflight(self, key: str) -> None:
        """Drop ``key`` from the in-flight set (its record expired: nothing is left to track)."""
        self._redis.zrem(self._keys.inflight, key)

    def status(self, key: str) -> dict[str, Any]:
        """The record as shown to callers and operators: masked, with ISO timestamps."""
        record = self.record(key)
        if not record:
            return {"key": key, "state": "unknown"}
        request = SendRequest.from_dict(json.loads(record["request"]))
        status: dict[str, Any] = {
            "key": key,
            "state": record["state"],
            **request.masked(),
            "task_id": record.get("task_id"),
            "task_ids": json.loads(record.get("task_ids", "[]")),
            "attempts": int(record.get("attempts", 0)),
            "created_at": iso(record.get("created_at")),
            "updated_at": iso(record.get("updated_at")),
        }
        for field in ("contact_id", "sent_at", "reason", "detail", "last_error", "retry_at"):
            if field in record:
                value = record[field]
                status[field] = iso(value) if field.endswith("_at") else mask_value(value)
        return status

    def stale_inflight(self, older_than: float, limit: int = 1000) -> list[str]:
        """Keys not finished and untouched for ``older_than`` seconds (stuck sends)."""
        cutoff = time.time() - older_than
        raw = self._redis.zrangebyscore(self._keys.inflight, "-inf", cutoff, start=0, num=limit)
        return [text(k) for k in raw]


def read_record(client: redis.Redis, keys: RedisKeys, key: str) -> dict[str, str]:
    """The ledger record of ``key`` as text (empty when unknown)."""
    return {text(k): text(v) for k, v in client.hgetall(keys.send(key)).items()}


def iso(value: str | float | None) -> str | None:
    """A stored epoch timestamp as ISO 8601 UTC."""
    if value is None:
        return None
    return datetime.fromtimestamp(float(value), UTC).isoformat(timespec="milliseconds")


def _now() -> str:
    return repr(time.time())


def text(value: object) -> str:
    """A Redis reply as text, whether the client decodes replies or not."""
    return value.decode() if isinstance(value, bytes) else str(value)
