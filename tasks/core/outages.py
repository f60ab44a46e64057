"""Redis and broker outages as :class:`~tasks.core.errors.ServiceUnavailable`, mapped by one table.

Used at the package's edges (the public API, publishing, the dead-letter commands) so a caller
sees one error naming the service and its URL, password masked, instead of redis-py's or kombu's.
Other Redis errors (a script error, a wrong type) are bugs, not outages: they pass unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal
from urllib.parse import urlsplit

from kombu.exceptions import OperationalError

from tasks.core.errors import ServiceUnavailable
from tasks.core.redis_errors import REDIS_UNREACHABLE

Service = Literal["redis", "broker"]

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
