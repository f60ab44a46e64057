"""A short-lived Redis flag that stops every send once Engage has refused our credentials.

Wrong credentials are wrong for every message: after the first 401/403, sends are parked in the
dead-letter store (reason ``auth_failed``) without calling Engage, instead of each message
hammering Engage with the same bad password. The flag is keyed by a keyed digest of the
credentials (:class:`~tasks.state.hashing.KeyHasher`), so a worker restarted with a corrected
password is not held back by it, and the key name reveals nothing of the password.
"""

from __future__ import annotations

import redis

from tasks.state.hashing import KeyHasher
from tasks.state.keys import RedisKeys

#: How long one refusal parks sends without asking Engage again.
AUTH_PARK_SECONDS = 60
#: Hex digits of the keyed digest in the flag's name.
DIGEST_LENGTH = 16


class AuthCircuit:
    """Remembers, for a while, that these credentials were refused."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        keys: RedisKeys,
        hasher: KeyHasher,
        username: str,
        password: str,
    ) -> None:
        self._redis = client
        self._key = keys.auth_failed(
            hasher.digest("credentials", f"{username}\0{password}", DIGEST_LENGTH)
        )

    @property
    def key(self) -> str:
        """The flag's Redis key: it exists while sends must be parked (steps read it in Lua)."""
        return self._key

    def trip(self) -> None:
        """Engage refused the credentials: park sends for :data:`AUTH_PARK_SECONDS`."""
        self._redis.set(self._key, "1", ex=AUTH_PARK_SECONDS)
