"""The opt-out (suppression) list: recipients who must not get a message, by keyed digest only.

One Redis hash, ``{p}:suppressed``: field = 32 hex digits of HMAC-SHA256 over the identifier's
type and value (:class:`~tasks.state.hashing.KeyHasher`), value = JSON with the masked
identifier and when it was added. The number or address itself is never stored: a list of
opted-out numbers in clear is a list of real, reachable people. So the list can be checked and
shown (masked), not read back; removing an entry takes the identifier again.

Checked at enqueue (``lua/claim.lua``: the send ends ``suppressed`` at once) and again under the
send lease just before Engage is called (``lua/policy_gate.lua``), so an opt-out that arrives
while a send waits still applies.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import redis

from tasks.core.request import Identifier
from tasks.state.hashing import KeyHasher
from tasks.state.keys import RedisKeys
from tasks.state.records import iso, text

#: Hex digits of a suppression digest (128 bits).
DIGEST_LENGTH = 32


@dataclass(frozen=True)
class Suppression:
    """One entry as shown: its digest, the masked identifier and when it was added (ISO 8601)."""

    digest: str
    recipient: str
    added_at: str | None


class SuppressionList:
    """Opted-out identifiers, stored as keyed digests."""

    def __init__(self, client: redis.Redis, *, keys: RedisKeys, hasher: KeyHasher) -> None:
        self._redis = client
        self._key = keys.suppressed
        self._hasher = hasher

    @property
    def key(self) -> str:
        """The hash the scripts check."""
        return self._key

    def digest(self, identifier: Identifier) -> str:
        """The field naming ``identifier`` (its type and value, keyed)."""
        return self._hasher.digest(
            "suppress", f"{identifier.type}:{identifier.value}", DIGEST_LENGTH
        )

    def lookup_digest(self, identifier: Identifier) -> str | None:
        """:meth:`digest` for a check, or None when no secret (so no entry) exists yet."""
        return self._hasher.existing_digest(
            "suppress", f"{identifier.type}:{identifier.value}", DIGEST_LENGTH
        )

    def add(self, identifiers: list[Identifier]) -> int:
        """Opt these identifiers out; returns how many were not on the list yet."""
        if not identifiers:
            return 0
        now = time.time()
        mapping = {
            self.digest(i): json.dumps({"recipient": i.masked(), "added_at": now})
            for i in identifiers
        }
        pipe = self._redis.pipeline(transaction=False)
        for field, value in mapping.items():
            pipe.hsetnx(self._key, field, value)
        return sum(int(n) for n in pipe.execute())

    def remove(self, identifiers: list[Identifier]) -> int:
        """Take these identifiers off the list; returns how many were on it."""
        if not identifiers:
            return 0
        return int(self._redis.hdel(self._key, *[self.digest(i) for i in identifiers]))

    def contains(self, identifier: Identifier) -> bool:
        """Whether ``identifier`` opted out."""
        return bool(self._redis.hexists(self._key, self.digest(identifier)))

    def count(self) -> int:
        """How many identifiers are on the list."""
        return int(self._redis.hlen(self._key))

    def entries(self, limit: int | None = None) -> list[Suppression]:
        """The entries (masked), oldest first; at most ``limit``."""
        rows = []
        for field, raw in self._redis.hscan_iter(self._key, count=1000):
            data = json.loads(text(raw))
            rows.append(Suppression(text(field), str(data.get("recipient")), data.get("added_at")))
        rows.sort(key=lambda s: float(s.added_at or 0))
        rows = rows[:limit] if limit is not None else rows
        return [Suppression(s.digest, s.recipient, iso(s.added_at)) for s in rows]
