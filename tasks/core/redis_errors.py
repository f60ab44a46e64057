"""The one definition of "Redis is unavailable for now" (:data:`REDIS_UNREACHABLE`).

Imports only redis-py and :mod:`tasks.core.errors`: the state layer uses it without loading kombu,
``tasks.core.outages`` turns it into ServiceUnavailable for callers.
"""

from __future__ import annotations

import redis
from redis._parsers.base import BaseParser
from redis.exceptions import ClusterDownError, TryAgainError

from tasks.core.errors import Rebuildable


class NoReplicasError(Rebuildable, redis.ResponseError):
    """``NOREPLICAS``: the primary takes no writes until enough replicas are connected
    (``min-replicas-to-write``). redis-py names READONLY, LOADING, MASTERDOWN and TRYAGAIN but
    raises a bare ResponseError for this one; registered below so it can be caught by type."""

    _fields = ("message", "status_code")

    def __init__(self, message: str, status_code: str | None = None) -> None:
        self.message = message
        # Newer redis-py passes the reply's first word as status_code; older ones neither pass it
        # nor take it.
        super().__init__(message, **({} if status_code is None else {"status_code": status_code}))
        self.status_code = status_code


# One entry in redis-py's table of error prefixes: only NOREPLICAS replies are affected, and they
# stay ResponseErrors for any other code in the process.
BaseParser.EXCEPTION_CLASSES.setdefault("NOREPLICAS", NoReplicasError)

#: The one definition of "Redis is unavailable for now": what workers wait out and retry, what
#: a sent SMS is kept being recorded through, and what callers get as ServiceUnavailable.
#: Everything else (a script error, a wrong type) is a bug and passes unchanged.
REDIS_UNREACHABLE: tuple[type[Exception], ...] = (
    redis.ConnectionError,  # refused, reset, wrong password, LOADING its data (BusyLoadingError)
    redis.TimeoutError,
    redis.ReadOnlyError,  # READONLY: a replica after a failover behind one DNS name
    NoReplicasError,  # NOREPLICAS: min-replicas-to-write not met
    ClusterDownError,  # CLUSTERDOWN, and MASTERDOWN (a replica that lost its primary)
    TryAgainError,  # TRYAGAIN: a slot being moved
    redis.exceptions.OutOfMemoryError,  # OOM: full under noeviction, writes refused until freed
)
