"""API tokens: created once, shown once, stored as keyed digests, compared in constant time.

A token reads ``esk_<id>_<secret>``. The id is public: it names the token's record in Redis and
the token in limits and logs. The record holds the keyed digest of the whole token
(HMAC-SHA256 under the deployment's secret, :class:`tasks.state.hashing.KeyHasher`), never the
token. Revoking deletes the record: the token answers 401 at once, its console sessions too.
Tokens live in Redis: a Redis that lost its data lost them too (401, saying so, until new ones
are made); tokens made after that work in a running ``engage-sms api`` without a restart.

Each token also gets a callback secret, shown once with the token, that signs the callbacks of
the sends it enqueues (:mod:`tasks.http.callbacks`).
"""

from __future__ import annotations

import hmac
import re
import secrets
import time
from dataclasses import dataclass
from enum import StrEnum

import redis

from tasks.core.errors import Rebuildable
from tasks.http.keys import HttpKeys
from tasks.state.hashing import KeyHasher
from tasks.state.records import iso, text

#: Digest purpose of API tokens (keeps them apart from other digests of the same secret).
PURPOSE = "api-token"
#: Hex digits of a token's public id, and bytes of its secret part.
ID_HEX = 16
SECRET_BYTES = 32
_TOKEN = re.compile(r"esk_(?P<id>[0-9a-f]{16})_[A-Za-z0-9_-]{20,100}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class Scope(StrEnum):
    """What a token may do: ``send`` enqueues and reads its own sends, ``read`` reads any
    status, ``operate`` does everything, the console included."""

    SEND = "send"
    READ = "read"
    OPERATE = "operate"


@dataclass(frozen=True)
class Token:
    """A token as the server knows it (never the token's text)."""

    id: str
    name: str
    scope: Scope
    created_at: float
    last_used_at: float | None
    #: Sends this token may create per UTC day; None: no cap.
    daily_cap: int | None
    callback_secret: str

    def allows(self, *scopes: Scope) -> bool:
        """True when the token's scope is one of ``scopes``, or ``operate``."""
        return self.scope == Scope.OPERATE or self.scope in scopes

    def listed(self) -> dict[str, object]:
        """What ``tokens list`` shows: never the token, nor its callback secret."""
        return {
            "name": self.name,
            "scope": self.scope.value,
            "created_at": iso(self.created_at),
            "last_used_at": iso(self.last_used_at),
            "daily_cap": self.daily_cap,
        }


@dataclass(frozen=True)
class NewToken:
    """What ``tokens create`` hands out, once."""

    token: Token
    text: str


class TokenNameTaken(Rebuildable, ValueError):
    """A token of this name exists already."""

    _fields = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(name)


def well_formed(presented: str) -> bool:
    """True when ``presented`` has a token's shape (``esk_<id>_<secret>``); asks no Redis."""
    return _TOKEN.fullmatch(presented) is not None


class TokenStore:
    """API tokens in Redis (see the module's docstring for what is kept)."""

    def __init__(self, client: redis.Redis, *, keys: HttpKeys, hasher: KeyHasher) -> None:
        self._redis = client
        self._keys = keys
        self._hasher = hasher

    def create(self, name: str, scope: Scope, *, daily_cap: int | None = None) -> NewToken:
        """A new token; TokenNameTaken when the name is used, ValueError for a bad name."""
        if not _NAME.fullmatch(name):
            raise ValueError(
                "a token name is 1-64 letters, digits, '_', '.' or '-', starting with a letter "
                "or digit"
            )
        token_id = secrets.token_hex(ID_HEX // 2)
        token_text = f"esk_{token_id}_{secrets.token_urlsafe(SECRET_BYTES)}"
        if not self._redis.hsetnx(self._keys.tokens, name, token_id):
            raise TokenNameTaken(name)
        now = time.time()
        token = Token(
            id=token_id,
            name=name,
            scope=scope,
            created_at=now,
            last_used_at=None,
            daily_cap=daily_cap,
            callback_secret=secrets.token_hex(32),
        )
        self._redis.hset(
            self._keys.token(token_id),
            mapping={
                "name": name,
                "scope": scope.value,
                "digest": self._digest(token_text),
                "created_at": repr(now),
                "callback_secret": token.callback_secret,
            },
        )
        if daily_cap is not None:
            self._redis.hset(self._keys.token(token_id), "daily_cap", str(daily_cap))
        return NewToken(token, token_text)

    def authenticate(self, presented: str) -> Token | None:
        """The token ``presented`` is, or None (unknown, malformed or revoked)."""
        match = _TOKEN.fullmatch(presented)
        if match is None:
            return None
        found = self._load(match.group("id"))
        if found is None:
            return None
        token, stored = found
        if hmac.compare_digest(stored, self._digest(presented)):
            return token
        # Made after Redis lost its data, under a secret made anew since this process read its
        # own: read the secret again (only on a mismatch, so a request costs no extra trip).
        if self._hasher.reload() and hmac.compare_digest(stored, self._digest(presented)):
            return token
        return None

    def any_left(self) -> bool:
        """False when no token exists at all: none made yet, or Redis lost its data."""
        return bool(self._redis.exists(self._keys.tokens))

    def get(self, token_id: str) -> Token | None:
        """The token with this id, or None (revoked or never made)."""
        found = self._load(token_id)
        return None if found is None else found[0]

    def _load(self, token_id: str) -> tuple[Token, str] | None:
        """The token with this id and its stored digest, or None."""
        raw = self._redis.hgetall(self._keys.token(token_id))
        record = {text(k): text(v) for k, v in raw.items()}
        if "digest" not in record:
            # None, or only the last-used time a request in flight wrote after the revoke.
            return None
        token = Token(
            id=token_id,
            name=record["name"],
            scope=Scope(record["scope"]),
            created_at=float(record["created_at"]),
            last_used_at=float(record["last_used_at"]) if "last_used_at" in record else None,
            daily_cap=int(record["daily_cap"]) if "daily_cap" in record else None,
            callback_secret=record["callback_secret"],
        )
        return token, record["digest"]

    def tokens(self) -> list[Token]:
        """Every token, by name."""
        ids = {text(k): text(v) for k, v in self._redis.hgetall(self._keys.tokens).items()}
        found = [self.get(token_id) for _, token_id in sorted(ids.items())]
        return [token for token in found if token is not None]

    def revoke(self, name: str) -> bool:
        """Delete the token called ``name``; False when there is none."""
        token_id = self._redis.hget(self._keys.tokens, name)
        if token_id is None:
            return False
        pipe = self._redis.pipeline()
        pipe.delete(self._keys.token(text(token_id)))
        pipe.hdel(self._keys.tokens, name)
        pipe.execute()
        return True

    def _digest(self, token_text: str) -> str:
        return self._hasher.digest(PURPOSE, token_text, 64)
