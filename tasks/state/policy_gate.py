"""The sending policy's last word before Engage is called, and the final states it ends sends in.

:meth:`PolicyGate.check` runs under the send lease (``lua/policy_gate.lua``): the lease still
ours (then renewed: the call starts with all of it), the opt-out list once more and the
recipient's cap, in one round trip. :meth:`PolicyGate.finish` ends a send
``expired``, ``capped`` or ``suppressed`` (``lua/mark_final.lua``): final, its completion callback
filed in the same step, its record slimmed like a sent one, and never a dead letter (a batch
replay would send it late, or to someone who opted out).
"""

from __future__ import annotations

import redis

from tasks.state import scripts
from tasks.state.enums import POLICY_ENDS, SendState
from tasks.state.keys import RedisKeys
from tasks.state.recipient_caps import CapCheck
from tasks.state.records import text


class PolicyGate:
    """Opt-out and cap check under the lease; the policy's final states."""

    def __init__(
        self, client: redis.Redis, *, keys: RedisKeys, retention: float, lease: float
    ) -> None:
        self._keys = keys
        self._lease = lease
        self._retention_ms = int(retention * 1000)
        self._gate = scripts.register(client, "policy_gate")
        self._final = scripts.register(client, "mark_final")

    def check(self, key: str, owner: str, *, suppression: str | None, cap: CapCheck | None) -> str:
        """``ok`` (counted against the cap, the lease renewed for a whole call from now),
        ``suppressed``, ``capped`` or ``lost`` (the lease is not ``owner``'s any more)."""
        k = self._keys
        cap_key = cap.key if cap is not None else k.send(key)  # an unused slot, never written
        return text(
            self._gate(
                keys=[k.send(key), k.suppressed, cap_key],
                args=[
                    owner,
                    suppression or "",
                    cap.limit if cap is not None else 0,
                    cap.window_ms if cap is not None else 0,
                    key,
                    self._lease,
                ],
            )
        )

    def finish(self, key: str, state: SendState, detail: str, *, owner: str = "") -> bool:
        """End the send in ``state`` (expired, capped, suppressed); False if it was final already
        or another delivery holds its lease."""
        if state not in POLICY_ENDS:
            raise ValueError(f"{state} is not a final state of the sending policy")
        k = self._keys
        return bool(
            self._final(
                keys=[k.send(key), k.inflight, k.callbacks, k.deferred],
                args=[state, detail, key, self._retention_ms, owner],
            )
        )
