"""Keyed digests for key names that would otherwise reveal a phone number or a password.

HMAC-SHA256 under a secret kept in Redis (see :mod:`tasks.state.keys` for why and what it does
not protect against). Every process derives the same digests: the first one to need the secret
makes it with ``SET NX``; the others, and that one too, then ``GET`` it once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading

import redis

from tasks.state.keys import RedisKeys
from tasks.state.records import text

#: Random bytes in a new secret, stored as hex: 256 bits, the strength of SHA-256 itself.
SECRET_BYTES = 32


class KeyHasher:
    """Digests for key names, keyed by a per-deployment secret read from Redis on first use."""

    def __init__(self, client: redis.Redis, *, keys: RedisKeys) -> None:
        self._redis = client
        self._name = keys.hmac_secret
        self._secret: bytes | None = None
        self._lock = threading.Lock()

    def digest(self, purpose: str, value: str, length: int) -> str:
        """The first ``length`` hex digits of HMAC-SHA256(secret, ``purpose`` NUL ``value``).

        ``purpose`` keeps the digests of one value apart where different keys use it.
        """
        message = f"{purpose}\0{value}".encode()
        return hmac.new(self._key(), message, hashlib.sha256).hexdigest()[:length]

    def existing_digest(self, purpose: str, value: str, length: int) -> str | None:
        """:meth:`digest`, or None while no secret exists (and none is made).

        For lookups at enqueue: a store keyed by the secret (the opt-out list) is empty while
        there is none, and a web process that only enqueues leaves nothing behind in Redis.
        """
        if self._secret is None:
            stored = self._redis.get(self._name)
            if stored is None:
                return None
            with self._lock:
                self._secret = text(stored).encode()
        return self.digest(purpose, value, length)

    def reload(self) -> bool:
        """Read the secret again; True when Redis holds another one than this process cached
        (made anew after Redis lost its data), which is used from now on."""
        stored = self._redis.get(self._name)
        if stored is None:
            return False
        with self._lock:
            changed = text(stored).encode() != self._secret
            self._secret = text(stored).encode()
        return changed

    def _key(self) -> bytes:
        if self._secret is None:
            with self._lock:
                if self._secret is None:
                    self._secret = self._load()
        return self._secret

    def _load(self) -> bytes:
        # NX: of two processes starting at once, the first secret wins and both read it back.
        self._redis.set(self._name, secrets.token_hex(SECRET_BYTES), nx=True)
        stored = self._redis.get(self._name)
        if stored is None:
            raise RuntimeError(f"{self._name} vanished right after it was set")
        return text(stored).encode()
