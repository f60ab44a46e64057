"""Console sessions: a random cookie, stored as its digest, with the session's CSRF token.

Logging in with an ``operate`` token makes a session (8 h); the cookie is HttpOnly,
SameSite=Strict, and Secure when the console is served over HTTPS. Each request checks the
token again, so a revoked token ends its sessions at once. Every form carries the session's CSRF
token; the login form, before any session, a one-time value that must match its own cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

import redis

from tasks.http.keys import HttpKeys
from tasks.state.records import text

#: How long a console session lasts.
SESSION_SECONDS = 8 * 3600
#: Cookie names: the session, and the login form's CSRF value.
SESSION_COOKIE = "engage_console"
LOGIN_COOKIE = "engage_console_login"


@dataclass(frozen=True)
class Session:
    """A logged-in console session."""

    token_id: str
    csrf: str


class ConsoleSessions:
    """Console sessions in Redis, by the digest of their cookie."""

    def __init__(self, client: redis.Redis, *, keys: HttpKeys) -> None:
        self._redis = client
        self._keys = keys

    def open(self, token_id: str) -> str:
        """A new session for ``token_id``; the cookie value (shown to no one else)."""
        cookie = secrets.token_urlsafe(32)
        name = self._keys.session(_digest(cookie))
        pipe = self._redis.pipeline(transaction=False)
        pipe.hset(name, mapping={"token": token_id, "csrf": secrets.token_urlsafe(32)})
        pipe.expire(name, SESSION_SECONDS)
        pipe.execute()
        return cookie

    def get(self, cookie: str | None) -> Session | None:
        """The session of ``cookie``, or None."""
        if not cookie:
            return None
        raw = self._redis.hgetall(self._keys.session(_digest(cookie)))
        if not raw:
            return None
        record = {text(k): text(v) for k, v in raw.items()}
        return Session(token_id=record["token"], csrf=record["csrf"])

    def close(self, cookie: str | None) -> None:
        """End the session of ``cookie`` (logging out)."""
        if cookie:
            self._redis.delete(self._keys.session(_digest(cookie)))


def same_secret(expected: str, given: str | None) -> bool:
    """True when ``given`` is ``expected``, compared in constant time."""
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())


def new_login_nonce() -> str:
    """The login form's CSRF value (also set as its cookie)."""
    return secrets.token_urlsafe(32)


def _digest(cookie: str) -> str:
    return hashlib.sha256(cookie.encode()).hexdigest()
