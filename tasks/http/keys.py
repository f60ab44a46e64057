"""The Redis keys the HTTP front door writes, all under the package's prefix (``{p}:http:...``).

::

    Key                                 Type    Holds (expiry)
    {p}:http:tokens                     hash    token name -> token id
    {p}:http:token:{id}                 hash    one API token: name, scope, keyed digest, callback
                                                secret, daily cap, created, last used (none)
    {p}:http:rate:{id}:{second}         string  requests of one token in one second (2 s)
    {p}:http:daily:{id}:{yyyy-mm-dd}    string  sends a token created that UTC day (2 days)
    {p}:http:send:{key}                 string  JSON: which token sent ``key``, its callback URL
                                                and lane (the ledger's retention)
    {p}:http:callbacks                  zset    keys with a callback URL, by next check time
    {p}:http:callback:{key}             hash    the final state last delivered, failed tries
    {p}:http:session:{digest}           hash    a console session: token id, CSRF token (8 h)
    {p}:http:audit:{key}                list    console actions on ``key`` (the ledger's retention)

A token's id is public (it is the token's first part); the token itself is stored only as a keyed
digest (:class:`tasks.state.hashing.KeyHasher`). A session cookie is stored as a digest too.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HttpKeys:
    """The names of the HTTP front door's Redis keys under one prefix."""

    prefix: str = "engage"

    @property
    def tokens(self) -> str:
        """Hash of token ids by name."""
        return f"{self.prefix}:http:tokens"

    def token(self, token_id: str) -> str:
        """One token's record."""
        return f"{self.prefix}:http:token:{token_id}"

    def rate(self, token_id: str, second: int) -> str:
        """Requests of one token in one second."""
        return f"{self.prefix}:http:rate:{token_id}:{second}"

    def daily(self, token_id: str, day: str) -> str:
        """Sends one token created on one UTC day."""
        return f"{self.prefix}:http:daily:{token_id}:{day}"

    def send(self, key: str) -> str:
        """Which token sent ``key``, and its callback URL."""
        return f"{self.prefix}:http:send:{key}"

    @property
    def callbacks(self) -> str:
        """Sorted set of keys whose callback is pending, by when to look at them next."""
        return f"{self.prefix}:http:callbacks"

    def callback(self, key: str) -> str:
        """What was delivered to the callback URL of ``key`` so far."""
        return f"{self.prefix}:http:callback:{key}"

    def session(self, digest: str) -> str:
        """One console session, by the digest of its cookie."""
        return f"{self.prefix}:http:session:{digest}"

    def audit(self, key: str) -> str:
        """Console actions taken on ``key``."""
        return f"{self.prefix}:http:audit:{key}"
