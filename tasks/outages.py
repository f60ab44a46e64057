"""Redis and broker outages as :class:`~tasks.errors.ServiceUnavailable`, mapped by one table.

Used at the package's edges (the public API, publishing, the dead-letter commands) so a caller
sees one error naming the service and its URL, password masked, instead of redis-py's or kombu's.
Other Redis errors (a script error, a wrong type) are bugs, not outages: they pass unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal
from urllib.parse import urlsplit

import redis
from kombu.exceptions import OperationalError
from redis._parsers.base import BaseParser
from redis.exceptions import ClusterDownError, TryAgainError

from tasks.errors import ServiceUnavailable

Service = Literal["redis", "broker"]


class NoReplicasError(redis.ResponseError):
    """``NOREPLICAS``: the primary takes no writes until enough replicas are connected
    (``min-replicas-to-write``). redis-py names READONLY, LOADING, MASTERDOWN and TRYAGAIN but
    raises a bare ResponseError for this one; registered below so it can be caught by type."""


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
#: Which errors mean "this service did not answer". kombu wraps the transport's connection
#: errors in OperationalError once its publish retries are spent.
OUTAGES: dict[Service, tuple[type[Exception], ...]] = {
    "redis": REDIS_UNREACHABLE,
    "broker": (OperationalError, *REDIS_UNREACHABLE),
}


@contextmanager
def unavailable_as(service: Service, url: str) -> Iterator[None]:
    """Raise an outage of ``service`` inside the block as ServiceUnavailable (cause kept)."""
    try:
        yield
    except OUTAGES[service] as err:
        raise ServiceUnavailable(service, url, _reason(err, url)) from err


def _reason(err: BaseException, url: str) -> str:
    """The socket's own words (``Connection refused``) when there are any, else the error's."""
    reason = str(err)
    cause: BaseException | None = err
    seen: set[int] = set()
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, OSError) and cause.strerror:
            reason = cause.strerror
            break
        cause = cause.__cause__ or cause.__context__
    password = urlsplit(url).password
    # A last guard: no library's error text may carry the password onto the screen.
    return reason.replace(password, "***") if password else reason
