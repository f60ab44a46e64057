"""What operators did in the console, per key: shown in the send's timeline."""

from __future__ import annotations

import json
import time
from typing import Any

import redis

from tasks.http.keys import HttpKeys

#: Actions kept per key (the newest).
MAX_ACTIONS = 50


class AuditLog:
    """Console actions by key: what, by which token name, when."""

    def __init__(self, client: redis.Redis, *, keys: HttpKeys, retention: float) -> None:
        self._redis = client
        self._keys = keys
        self._retention_ms = int(retention * 1000)

    def record(self, key: str, action: str, by: str, outcome: str) -> None:
        """File one action on ``key``."""
        entry = json.dumps({"at": time.time(), "action": action, "by": by, "outcome": outcome})
        name = self._keys.audit(key)
        pipe = self._redis.pipeline(transaction=False)
        pipe.lpush(name, entry)
        pipe.ltrim(name, 0, MAX_ACTIONS - 1)
        pipe.pexpire(name, self._retention_ms)
        pipe.execute()

    def actions(self, key: str) -> list[dict[str, Any]]:
        """The actions on ``key``, oldest first."""
        return [
            json.loads(raw) for raw in reversed(self._redis.lrange(self._keys.audit(key), 0, -1))
        ]
