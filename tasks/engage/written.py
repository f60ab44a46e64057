"""Whether the request of this thread's current call has started to leave this machine.

A ``requests`` exception does not say *when* it happened: a TLS error (``requests.SSLError``)
is the same type whether the handshake failed, before any byte of the request was written, or
a record of the answer was broken after Engage acted on it. Only the first is "not sent". The
adapter of :func:`tasks.engage.http.make_session` uses connections that note, per thread, the
moment they start writing a request; :func:`tasks.engage.http` asks :func:`started` after a
failure. Starting counts, not finishing: a write that fails half-way may still have reached
Engage.
"""

from __future__ import annotations

import threading
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.poolmanager import PoolManager

_progress = threading.local()


def reset() -> None:
    """Before a call: nothing of its request has been written yet (by this thread)."""
    _progress.started = False


def started() -> bool:
    """This thread's current request has begun to be written (the connection stood by then)."""
    return bool(getattr(_progress, "started", False))


class _Noting:
    """Connects first, as the request would (an HTTPS pool has already), then notes the start."""

    sock: Any

    def request(self, *args: Any, **kwargs: Any) -> None:
        if self.sock is None:
            self.connect()  # type: ignore[attr-defined]  # a mixin of urllib3's connections
        _progress.started = True
        super().request(*args, **kwargs)  # type: ignore[misc]


class NotingHTTPConnection(_Noting, HTTPConnection):
    """urllib3's HTTP connection, noting when it starts to write a request."""


class NotingHTTPSConnection(_Noting, HTTPSConnection):
    """urllib3's HTTPS connection, noting when it starts to write a request."""


class _NotingHTTPConnectionPool(HTTPConnectionPool):
    # Any pool class works the same way: set ConnectionCls to a noting connection.
    ConnectionCls = NotingHTTPConnection


class _NotingHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = NotingHTTPSConnection


_POOLS = {"http": _NotingHTTPConnectionPool, "https": _NotingHTTPSConnectionPool}


class NotingAdapter(HTTPAdapter):
    """``requests``' adapter whose connections note when a request starts to be written."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        """The usual pool manager, with noting connection pools."""
        super().init_poolmanager(*args, **kwargs)
        _use_noting_pools(self.poolmanager)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        """The usual proxy manager (made once per proxy), with noting connection pools."""
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        _use_noting_pools(manager)
        return manager


def _use_noting_pools(manager: PoolManager) -> None:
    manager.pool_classes_by_scheme = dict(_POOLS)
