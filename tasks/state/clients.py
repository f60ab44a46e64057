"""Every Redis client of the package is built here, from the settings: ``redis://`` or Sentinel.

The ledger, rate limit, callbacks outbox, ``doctor``, the metrics sidecar and the demo all take
their client from :func:`redis_client`; the broker's transport builds its own pool the same way
(kombu's ``SentinelChannel``, given :func:`broker_transport_options`). With a ``sentinel://`` URL
the client asks the sentinels where the primary is, and asks again after a failover: redis-py's
``SentinelConnectionPool`` reconnects to whichever server the sentinels name then, and a demoted
primary's ``READONLY`` answer counts as a lost connection.
"""

from __future__ import annotations

from typing import Any

import redis
from redis._parsers.base import BaseParser
from redis.sentinel import Sentinel

from tasks.core.errors import Rebuildable
from tasks.core.settings import Settings
from tasks.core.urls import is_sentinel_url, parse_sentinel_url


class NoGoodReplicas(Rebuildable, redis.ConnectionError):
    """``NOREPLICAS``: the primary takes no writes until a replica catches up.

    With ``min-replicas-to-write`` (the README's setting), a primary whose replicas are away or
    lagging refuses writes: right after a failover, until the other replica has synced with the
    new primary. That is an outage of a second or two, to be waited out and retried like a lost
    connection, not a bug; redis-py would otherwise raise a plain ``ResponseError``.
    """

    _fields = ("message", "status_code")

    def __init__(self, message: str, status_code: str | None = None) -> None:
        self.message = message
        # Newer redis-py passes the reply's first word as status_code; older ones neither pass it
        # nor take it.
        super().__init__(message, **({} if status_code is None else {"status_code": status_code}))
        self.status_code = status_code


def refusals_as_outages() -> None:
    """Make redis-py raise :class:`NoGoodReplicas` for ``NOREPLICAS`` (kombu's clients too)."""
    BaseParser.EXCEPTION_CLASSES["NOREPLICAS"] = NoGoodReplicas


def redis_client(settings: Settings, url: str | None = None, **options: Any) -> redis.Redis:
    """A client of ``url`` (default ``REDIS_URL``); ``options`` are redis-py's (timeouts...)."""
    refusals_as_outages()
    url = settings.redis_url if url is None else url
    if not is_sentinel_url(url):
        return redis.Redis.from_url(url, **options)
    address = parse_sentinel_url(url)
    login: dict[str, Any] = {"username": address.username, "password": address.password}
    primary: redis.Redis = sentinels(settings, url, **options).master_for(
        _master_name(settings),
        redis_class=redis.Redis,
        db=address.db,
        **{k: v for k, v in login.items() if v},
    )
    return primary


def sentinels(settings: Settings, url: str, **options: Any) -> Sentinel:
    """redis-py's view of the sentinels of a ``sentinel://`` URL (``doctor`` asks them too)."""
    address = parse_sentinel_url(url)
    return Sentinel(
        address.sentinels,
        sentinel_kwargs=_sentinel_kwargs(settings, options),
        **options,
    )


def broker_transport_options(settings: Settings) -> dict[str, Any]:
    """What kombu's Sentinel transport needs beside the URL (empty for ``redis://``)."""
    refusals_as_outages()
    if not is_sentinel_url(settings.broker_url):
        return {}
    return {
        "master_name": _master_name(settings),
        "sentinel_kwargs": _sentinel_kwargs(settings, {}),
    }


#: A sentinel that does not answer within this long (s) is skipped for the next one.
SENTINEL_TIMEOUT = 2.0


def _sentinel_kwargs(settings: Settings, options: dict[str, Any]) -> dict[str, Any]:
    # The sentinels get the primary's timeouts (a short one by default), and their own password.
    kwargs: dict[str, Any] = {
        name: options.get(name, SENTINEL_TIMEOUT)
        for name in ("socket_timeout", "socket_connect_timeout")
    }
    if settings.sentinel_password:
        kwargs["password"] = settings.sentinel_password
    return kwargs


def _master_name(settings: Settings) -> str:
    # load_settings refuses a sentinel:// URL without the name; a hand-made Settings may not.
    if settings.redis_master_name is None:
        raise ValueError("ENGAGE_REDIS_MASTER_NAME is needed with a sentinel:// URL")
    return settings.redis_master_name
