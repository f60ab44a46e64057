"""The dead-letter store: sends that ended without being sent, with why, kept for an operator.

Shaped like rq's FailedJobRegistry: a sorted set of idempotency keys scored by the time they were
dead-lettered, a hash of JSON entries, bounded by size and age. Moving a send here and flipping its
ledger record to ``dead_lettered`` is one atomic script (``lua/dlq_add.lua``); so is a replay.
Every path that takes an entry out (replay, purge, the age and size bounds, the send found sent
after all) removes it from all three keys: the sorted set, the entries and the reasons.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from typing import Any

import redis

from tasks.core.masking import Masker
from tasks.core.request import SendRequest
from tasks.state import scripts
from tasks.state.enums import Reason
from tasks.state.keys import RedisKeys
from tasks.state.records import iso, read_record, text

logger = logging.getLogger("engage.dead_letters")


class DeadLetterStore:
    """Dead-lettered sends by idempotency key, bounded in count and age (seconds)."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        keys: RedisKeys,
        max_entries: int,
        max_age: float,
        retention: float,
    ) -> None:
        self._redis = client
        self._keys = keys
        self._max_entries = max_entries
        self._max_age = max_age
        self._retention_ms = int(retention * 1000)
        self._add = scripts.register(client, "dlq_add")
        self._replay = scripts.register(client, "dlq_replay")
        self._cleanup = scripts.register(client, "dlq_cleanup")

    def _script_keys(self, key: str) -> list[str]:
        k = self._keys
        return [
            k.send(key),
            k.dlq,
            k.dlq_entries,
            k.dlq_reasons,
            k.inflight,
            k.callbacks,
            k.dlq_over_bound,
        ]

    def state_of(self, key: str) -> str | None:
        """The ledger state of ``key`` (to say why a key has no entry), or None when unknown."""
        value = self._redis.hget(self._keys.send(key), "state")
        return None if value is None else text(value)

    def add(
        self,
        key: str,
        *,
        reason: Reason,
        detail: str,
        error: dict[str, Any] | None,
        task_ids: list[str],
        lapsed_lease: bool = False,
    ) -> bool | None:
        """Dead-letter the send; False when it was sent or cancelled meanwhile (never moved).

        ``lapsed_lease``: only while the send is ``sending`` under a lease past its time (on the
        Redis clock, checked in the step that moves it); False when its holder renewed or gave
        the lease back, or another delivery holds it, since it was seen lapsed.

        None when the send has no ledger record: nothing is written, the caller writes the
        record in full first. At ``ENGAGE_DLQ_MAX_ENTRIES`` the oldest entries leave the
        listing with a warning each; their keys stay in the over-bound set and
        :meth:`replay` still replays them from their ledger records (kept as long as entries).
        Every time involved (the entry's, the bounds) is the Redis server's (``TIME``).
        """
        record = read_record(self._redis, self._keys, key)
        request = json.loads(record["request"]) if "request" in record else None
        entry = {
            "key": key,
            "reason": reason,
            "detail": detail,
            "error": error,
            "request": request,
            "fingerprint": record.get("fingerprint"),
            "attempts": int(record.get("attempts", 0)),
            # first_failure_at and last_failure_at are added by the script, on the Redis clock.
            "task_ids": task_ids,
            "replays": int(record.get("replays", 0)),
            # Kept so a replay of a send whose record expired keeps its lane and callback.
            "priority": record.get("priority"),
            "on_done": record.get("on_done"),
        }
        reply = self._add(
            keys=self._script_keys(key),
            args=[
                key,
                reason,
                detail,
                json.dumps(entry),
                int(max(self._max_age * 1000, self._retention_ms)),
                self._max_age,
                self._max_entries,
                "1" if lapsed_lease else "0",
            ],
        )
        if not isinstance(reply, list):
            return None if int(reply) < 0 else False
        for over in reply[1:]:
            logger.warning(
                "dead-letter store at its bound (ENGAGE_DLQ_MAX_ENTRIES=%d): the entry of %s left "
                "the listing; the send stays dead_lettered and `engage-sms dlq replay %s` "
                "still replays it",
                self._max_entries,
                text(over),
                text(over),
            )
        return True

    def replay(self, key: str, task_ids: list[str]) -> tuple[str, SendRequest | None]:
        """Take the entry out and put its send back to ``queued`` under the same key."""
        outcome, request = self._replay(
            keys=self._script_keys(key),
            args=[key, task_ids[-1], json.dumps(task_ids), self._retention_ms],
        )
        if text(outcome) != "requeued":
            return text(outcome), None
        return "requeued", SendRequest.from_dict(json.loads(request))

    def get(self, key: str) -> dict[str, Any] | None:
        """One entry with the request masked, or None."""
        raw = self._redis.hget(self._keys.dlq_entries, key)
        return None if raw is None else _shown(json.loads(raw))

    def keys(self, reason: str | None = None, limit: int | None = None) -> list[str]:
        """Keys of entries, newest first, optionally of one reason."""
        found = [text(k) for k in self._redis.zrevrange(self._keys.dlq, 0, -1)]
        if reason is not None:
            reasons = {
                text(k): text(v) for k, v in self._redis.hgetall(self._keys.dlq_reasons).items()
            }
            found = [k for k in found if reasons.get(k) == reason]
        return found[:limit] if limit is not None else found

    def entries(self, reason: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Entries, newest first, with requests masked."""
        keys = self.keys(reason, limit)
        if not keys:
            return []
        raw = self._redis.hmget(self._keys.dlq_entries, keys)
        return [_shown(json.loads(r)) for r in raw if r is not None]

    def purge(self, reason: str | None = None) -> int:
        """Delete entries (all, or of one reason); the ledger keeps them dead-lettered."""
        return self._drop(self.keys(reason))

    def remove(self, keys: list[str]) -> int:
        """Delete these entries (the ones an operator confirmed); the ledger keeps them."""
        return self._drop(keys)

    def over_bound(self) -> list[str]:
        """Keys whose entry left the store at its size bound, oldest first (still replayable)."""
        return [text(k) for k in self._redis.zrange(self._keys.dlq_over_bound, 0, -1)]

    def over_bound_count(self) -> int:
        """How many keys left the store at its size bound (a gauge for monitoring)."""
        return int(self._redis.zcard(self._keys.dlq_over_bound))

    def depth_by_reason(self) -> dict[str, int]:
        """How many entries each reason has (for monitoring)."""
        reasons = self._redis.hvals(self._keys.dlq_reasons)
        return dict(Counter(text(r) for r in reasons))

    def cleanup(self) -> int:
        """Drop entries past the age bound (and leftovers of removed ones); how many went by age."""
        k = self._keys
        return int(self._cleanup(keys=[k.dlq, k.dlq_entries, k.dlq_reasons], args=[self._max_age]))

    def _drop(self, keys: list[str]) -> int:
        if keys:
            pipe = self._redis.pipeline()
            pipe.zrem(self._keys.dlq, *keys)
            pipe.hdel(self._keys.dlq_entries, *keys)
            pipe.hdel(self._keys.dlq_reasons, *keys)
            pipe.execute()
        return len(keys)


def _shown(entry: dict[str, Any]) -> dict[str, Any]:
    shown = dict(entry)
    request = shown.pop("request", None)
    shown.pop("fingerprint", None)
    if request is not None:
        send_request = SendRequest.from_dict(request)
        shown["request"] = send_request.masked()
        # Written masked; masked again by the request's values for entries of older versions.
        mask = Masker(send_request.private_values())
        if isinstance(shown.get("detail"), str):
            shown["detail"] = mask(shown["detail"])
        if isinstance(shown.get("error"), dict):
            shown["error"] = {
                k: mask(v) if isinstance(v, str) else v for k, v in shown["error"].items()
            }
    for field in ("first_failure_at", "last_failure_at"):
        shown[field] = iso(shown.get(field))
    return shown
