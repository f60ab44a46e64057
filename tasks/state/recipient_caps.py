"""Per-recipient frequency caps: at most N sends of a lane to one recipient within a period.

One sorted set per recipient and lane, ``{p}:cap:{lane}:{digest}`` (keyed digest of the
identifier), holding the idempotency keys of the sends that counted, scored by the Redis clock
(ms), so every worker on every host counts against one clock. The count is taken under the send
lease, just before Engage is called (``lua/policy_gate.lua``): a send counts once whatever its
retries, and a send that never got as far as the lease (expired, suppressed) does not count. A
send that then fails keeps its place: the cap bounds attempts to reach a person, not successes.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from tasks.core.request import Identifier
from tasks.core.send_options import Priority
from tasks.core.sending_policy import RecipientCap
from tasks.state.hashing import KeyHasher
from tasks.state.keys import RedisKeys

#: Hex digits of the keyed digest in a cap key (128 bits).
DIGEST_LENGTH = 32


@dataclass(frozen=True)
class CapCheck:
    """What the gate script needs for one send: the key, the limit and the window (ms)."""

    key: str
    limit: int
    window_ms: int


class RecipientCaps:
    """Counts sends per recipient and lane in Redis against ``ENGAGE_RECIPIENT_CAP``."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        keys: RedisKeys,
        hasher: KeyHasher,
        caps: dict[Priority, RecipientCap],
    ) -> None:
        self._redis = client
        self._keys = keys
        self._hasher = hasher
        self._caps = caps

    def check_for(self, identifier: Identifier, lane: Priority) -> CapCheck | None:
        """The cap a send of ``lane`` to ``identifier`` is counted against, or None."""
        cap = self._caps.get(lane)
        if cap is None:
            return None
        digest = self._hasher.digest("cap", f"{identifier.type}:{identifier.value}", DIGEST_LENGTH)
        return CapCheck(self._keys.recipient_cap(lane, digest), cap.limit, int(cap.window * 1000))

    def used(self, identifier: Identifier, lane: Priority) -> int:
        """Sends counted for this recipient and lane (including any past the window not yet
        trimmed: the gate trims before it counts)."""
        check = self.check_for(identifier, lane)
        return 0 if check is None else int(self._redis.zcard(check.key))
