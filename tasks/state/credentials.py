"""A short-lived Redis flag that stops every send once Engage has refused our credentials.

Wrong credentials are wrong for every message: after the first 401/403, sends are parked in the
dead-letter store (reason ``auth_failed``) without calling Engage, instead of each message
hammering Engage with the same bad password. The flag is keyed by a digest of the credentials,
so a worker restarted with a corrected password is not held back by it.
"""

from __future__ import annotations

import hashlib

import redis

#: How long one refusal parks sends without asking Engage again.
AUTH_PARK_SECONDS = 60


class AuthCircuit:
    """Remembers, for a while, that these credentials were refused."""

    def __init__(self, client: redis.Redis, *, prefix: str, username: str, password: str) -> None:
        digest = hashlib.sha256(f"{username}\0{password}".encode()).hexdigest()[:16]
        self._redis = client
        self._key = f"{prefix}:auth_failed:{digest}"

    @property
    def key(self) -> str:
        """The flag's Redis key: it exists while sends must be parked (steps read it in Lua)."""
        return self._key

    def trip(self) -> None:
        """Engage refused the credentials: park sends for :data:`AUTH_PARK_SECONDS`."""
        self._redis.set(self._key, "1", ex=AUTH_PARK_SECONDS)
