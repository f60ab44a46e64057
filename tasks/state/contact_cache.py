"""The contact-id cache: one Redis string per identifier, holding the Engage ``contactId``.

Keys are ``{prefix}:contact:{TYPE}:{digest}``, the digest being 32 hex digits of a keyed
HMAC-SHA256 of the identifier's value (:class:`~tasks.state.hashing.KeyHasher`): key names show
up in monitoring tools and ``redis-cli`` sessions, phone numbers and e-mail addresses must not,
and an unkeyed digest of a phone number is reversed by trying every number.
"""

from __future__ import annotations

import redis

from tasks.state.hashing import KeyHasher
from tasks.state.keys import RedisKeys

#: Hex digits of the keyed digest in a key name (128 bits: no two identifiers meet).
DIGEST_LENGTH = 32


class ContactCache:
    """Remembers, for ``ttl`` seconds, which contact id Engage gave for an identifier."""

    def __init__(
        self, client: redis.Redis, *, keys: RedisKeys, hasher: KeyHasher, ttl: float
    ) -> None:
        self._redis = client
        self._keys = keys
        self._hasher = hasher
        self._enabled = ttl > 0
        # Never 0: PX 0 is an error, and a tiny positive TTL still means "cache, briefly".
        self._ttl_ms = max(1, int(ttl * 1000))

    def get(self, id_type: str, value: str) -> int | None:
        """The cached contact id, or None (not cached, expired, or the cache is off)."""
        if not self._enabled:
            return None
        return self.decode(self._redis.get(self.key(id_type, value)))

    def lookup_key(self, id_type: str, value: str) -> str | None:
        """The key to read for this identifier, or None when the cache is off.

        For callers that fetch the value together with other reads; :meth:`decode` it then.
        """
        return self.key(id_type, value) if self._enabled else None

    @staticmethod
    def decode(raw: str | bytes | None) -> int | None:
        """A cached value as a contact id; None for a miss or for anything that is no id."""
        if raw is None:
            return None
        try:
            return int(raw)
        except (TypeError, ValueError):
            # Whatever wrote this, a cache must not fail a send: ask Engage instead.
            return None

    def put(self, id_type: str, value: str, contact_id: int) -> None:
        """Remember the contact id Engage returned for this identifier."""
        if self._enabled:
            self._redis.set(self.key(id_type, value), str(contact_id), px=self._ttl_ms)

    def entry(self, id_type: str, value: str) -> tuple[str, int] | None:
        """Key and TTL (ms) under which to remember a contact id, or None when the cache is off.

        For callers that write it together with other writes (one round trip); :meth:`put`
        otherwise.
        """
        return (self.key(id_type, value), self._ttl_ms) if self._enabled else None

    def invalidate(self, id_type: str, value: str) -> None:
        """Forget the identifier (Engage no longer knows the cached contact)."""
        if self._enabled:
            self._redis.delete(self.key(id_type, value))

    def key(self, id_type: str, value: str) -> str:
        """The Redis key for an identifier: its type in clear, its value only as a keyed digest."""
        return self._keys.contact(id_type, self._hasher.digest("contact", value, DIGEST_LENGTH))
