"""Per-token limits: requests per second (429 + Retry-After) and an optional daily send cap.

Both are counters in Redis, so every API process shares them. The request rate is counted in
whole seconds of the API host's clock (one ``INCR`` per request, in the same round trip as the
token's ``last used`` time); the daily cap counts sends the token created per UTC day, reserved
before the enqueue and given back when the enqueue created nothing.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta

import redis

from tasks.http.keys import HttpKeys
from tasks.http.tokens import Token


class TokenLimits:
    """The request rate and daily cap of each token."""

    def __init__(self, client: redis.Redis, *, keys: HttpKeys, rate_limit: int) -> None:
        self._redis = client
        self._keys = keys
        self._rate = rate_limit

    def admit(self, token: Token, now: float | None = None) -> float | None:
        """Count one request of ``token``: None if it may go on, else seconds to wait."""
        now = time.time() if now is None else now
        second = int(now)
        counter = self._keys.rate(token.id, second)
        pipe = self._redis.pipeline(transaction=False)
        pipe.incr(counter)
        pipe.expire(counter, 2)
        pipe.hset(self._keys.token(token.id), "last_used_at", repr(now))
        count = int(pipe.execute()[0])
        if self._rate and count > self._rate:
            return max(second + 1 - now, 0.001)
        return None

    def reserve_send(self, token: Token, now: float | None = None) -> float | None:
        """Take one of today's sends: None if taken (or no cap), else seconds to midnight UTC."""
        if token.daily_cap is None:
            return None
        day, until_midnight = _utc_day(time.time() if now is None else now)
        counter = self._keys.daily(token.id, day)
        pipe = self._redis.pipeline(transaction=False)
        pipe.incr(counter)
        pipe.expire(counter, 2 * 86400)
        if int(pipe.execute()[0]) <= token.daily_cap:
            return None
        self._redis.decr(counter)
        return until_midnight

    def release_send(self, token: Token, now: float | None = None) -> None:
        """Give back a send reserved by :meth:`reserve_send` that created nothing."""
        if token.daily_cap is not None:
            day, _ = _utc_day(time.time() if now is None else now)
            self._redis.decr(self._keys.daily(token.id, day))

    def sent_today(self, token: Token, now: float | None = None) -> int:
        """Sends ``token`` created today (UTC)."""
        day, _ = _utc_day(time.time() if now is None else now)
        value = self._redis.get(self._keys.daily(token.id, day))
        return int(value) if value is not None else 0


def _utc_day(now: float) -> tuple[str, float]:
    """The UTC day of ``now`` (``2026-12-05``) and the seconds left in it."""
    moment = datetime.fromtimestamp(now, UTC)
    midnight = datetime(moment.year, moment.month, moment.day, tzinfo=UTC) + timedelta(days=1)
    return moment.date().isoformat(), math.ceil((midnight - moment).total_seconds())
