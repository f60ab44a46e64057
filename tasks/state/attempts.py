"""Each Engage call of a send, one short entry each: :class:`AttemptHistory`.

The ledger keeps a send's attempt count and last error; this keeps what the console's timeline
shows of each call: when (Redis ``TIME``), the Engage operation (``contact/get``,
``contact/create``, ``message/sendSingle``), Engage's HTTP status or the error's type, Engage's
``errorCode`` (taken from the masked error: Engage's text may echo a request value), and what came
of it (``ok``, ``retry``, ``dead-letter``, ``unknown``). No message text and no request value is
written, so an entry holds nothing private.

One list per send (``{p}:attempts:{key}``), the last :data:`MAX_ATTEMPT_ENTRIES` entries, written
by one script that also gives it the ledger record's remaining time to live: it expires with the
record (a dead-lettered record is kept longer, and so is its history). One round trip per call.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

import redis

from tasks.state.keys import RedisKeys
from tasks.state.scripts import register

#: Entries kept per send: the last ones (a send makes at most a few dozen Engage calls).
MAX_ATTEMPT_ENTRIES = 20


class AttemptOutcome(StrEnum):
    """What came of one Engage call."""

    OK = "ok"
    RETRY = "retry"
    DEAD_LETTER = "dead-letter"
    #: The request may have reached Engage and no answer says whether it acted.
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class AttemptEntry:
    """One Engage call, as stored (``at`` is set by Redis when it is written)."""

    stage: str
    outcome: str
    #: Engage's HTTP status, or None when no answer came (a timeout, a refused connection).
    status: int | None = None
    #: Engage's ``errorCode``, or the error's type when Engage gave none.
    error: str | None = None
    #: The delay before the next try, for ``retry`` (s).
    retry_in: float | None = None
    #: The dead-letter reason, for ``dead-letter`` and ``unknown``.
    reason: str | None = None
    at: float | None = None

    def to_json(self) -> str:
        """The stored form without ``at`` (the script puts Redis's time first)."""
        fields = {k: v for k, v in asdict(self).items() if v is not None and k != "at"}
        return json.dumps(fields, separators=(",", ":"))


def _entry(raw: bytes | str) -> AttemptEntry | None:
    try:
        data: dict[str, Any] = json.loads(raw)
        return AttemptEntry(
            stage=str(data["stage"]),
            outcome=str(data["outcome"]),
            status=None if data.get("status") is None else int(data["status"]),
            error=None if data.get("error") is None else str(data["error"]),
            retry_in=None if data.get("retry_in") is None else float(data["retry_in"]),
            reason=None if data.get("reason") is None else str(data["reason"]),
            at=None if data.get("at") is None else float(data["at"]),
        )
    except (ValueError, KeyError, TypeError):
        return None  # a damaged entry is left out of the timeline, never an error page


class AttemptHistory:
    """The last Engage calls of each send, kept as long as its ledger record."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        keys: RedisKeys,
        retention: float,
        limit: int = MAX_ATTEMPT_ENTRIES,
    ) -> None:
        self._redis = client
        self._keys = keys
        self._retention_ms = int(retention * 1000)
        self._limit = limit
        self._add = register(client, "attempt_add")

    def add(self, key: str, entry: AttemptEntry) -> None:
        """Append ``entry`` to the history of ``key`` (one round trip)."""
        self._add(
            keys=[self._keys.attempts(key), self._keys.send(key)],
            args=[entry.to_json(), self._limit, self._retention_ms],
        )

    def history(self, key: str) -> list[AttemptEntry]:
        """The kept entries of ``key``, oldest first."""
        raw = self._redis.lrange(self._keys.attempts(key), 0, -1)
        return [entry for entry in map(_entry, raw) if entry is not None]
