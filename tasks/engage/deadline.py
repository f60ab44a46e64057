"""A total deadline for every Engage call: the answer is complete by then, or the call is cut.

``requests``' read timeout bounds each socket read, not the call: an answer trickled one byte
every two seconds never trips a 35 s read timeout and can outlive the send's lease, so the sweep
would take a live send for a dead one. Each call therefore runs under a :func:`deadline` (connect
plus read timeout, shorter than the lease by ``ENGAGE_LEASE_MARGIN``); when it passes, one
watchdog thread per process shuts the call's socket down, and the blocked read fails at once.

The socket is found through urllib3's connection pools (:class:`DeadlineAdapter`), which tell
the current call's deadline which connection it is using. A SOCKS proxy's pools are not covered.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool


class Deadline:
    """One call's deadline: the connection it uses is shut down when the time is up."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        #: True once the watchdog cut the call.
        self.expired = False
        self._finished = False
        self._connection: Any = None
        self._lock = threading.Lock()

    def attach(self, connection: Any) -> None:
        """The call is about to use ``connection`` (a urllib3 connection)."""
        with self._lock:
            self._connection = connection
            late = self.expired
        if late:
            _shut(connection)

    def expire(self) -> None:
        """Time is up: cut the call, unless it finished."""
        with self._lock:
            if self._finished:
                return
            self.expired = True
            connection = self._connection
        if connection is not None:
            _shut(connection)

    def finish(self) -> None:
        """The call is over: the watchdog leaves its connection alone from now on."""
        with self._lock:
            self._finished = True


def _shut(connection: Any) -> None:
    sock = getattr(connection, "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):  # already closed: nothing left to cut
            sock.shutdown(socket.SHUT_RDWR)


#: Seconds the watchdog may be late: it expires every deadline due within one tick together.
WATCHDOG_TICK = 0.05


class _Watchdog:
    """One daemon thread per process that expires deadlines in time order."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Deadline]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def arm(self, deadline: Deadline) -> None:
        """Expire ``deadline`` at its time unless it finished by then."""
        with self._wake:
            heapq.heappush(self._heap, (deadline.at, next(self._order), deadline))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="engage-call-deadlines", daemon=True
                )
                self._thread.start()
            # Calls share one duration, so a new deadline is rarely the earliest: no wake-up.
            if self._heap[0][2] is deadline:
                self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._heap:
                    self._wake.wait()
                wait = self._heap[0][0] - time.monotonic()
                if wait > 0:
                    # At most one wake-up per WATCHDOG_TICK, however many calls are under way.
                    self._wake.wait(max(wait, WATCHDOG_TICK))
                    continue
                due = []
                while self._heap and self._heap[0][0] <= time.monotonic():
                    due.append(heapq.heappop(self._heap)[2])
            for deadline in due:
                deadline.expire()


_watchdog = _Watchdog()
_current = threading.local()


def _after_fork() -> None:
    # The parent's watchdog thread does not exist in a forked child (prefork pool).
    global _watchdog  # noqa: PLW0603  (one watchdog per process)
    _watchdog = _Watchdog()


os.register_at_fork(after_in_child=_after_fork)


@contextmanager
def deadline(seconds: float) -> Iterator[Deadline]:
    """Run the block (one HTTP call on this thread) under a deadline of ``seconds``."""
    call = Deadline(seconds)
    _current.deadline = call
    _watchdog.arm(call)
    try:
        yield call
    finally:
        call.finish()
        _current.deadline = None


class _DeadlinePool:
    """A connection pool that tells the calling thread's deadline which connection it uses."""

    def _make_request(self, conn: Any, *args: Any, **kwargs: Any) -> Any:
        call: Deadline | None = getattr(_current, "deadline", None)
        if call is not None:
            call.attach(conn)
        return super()._make_request(conn, *args, **kwargs)  # type: ignore[misc]  # a mixin


@cache
def _under_deadlines(pool: type[HTTPConnectionPool]) -> type[HTTPConnectionPool]:
    """``pool`` (urllib3's, or any subclass an adapter below uses) obeying call deadlines."""
    if issubclass(pool, _DeadlinePool):
        return pool
    return type(f"Deadline{pool.__name__}", (_DeadlinePool, pool), {})


def _watch(manager: Any) -> None:
    manager.pool_classes_by_scheme = {
        scheme: _under_deadlines(pool) for scheme, pool in manager.pool_classes_by_scheme.items()
    }


class DeadlineAdapter(HTTPAdapter):
    """requests' adapter whose pools (direct or through an HTTP proxy) obey call deadlines.

    It wraps whatever pools the adapters after it in the MRO chose, so it composes with another
    adapter subclass: ``class Adapter(DeadlineAdapter, OtherAdapter)``.
    """

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        """The pool manager below, with its pools under deadlines."""
        super().init_poolmanager(*args, **kwargs)
        _watch(self.poolmanager)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        """The proxy's pool manager below, with its pools under deadlines."""
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        _watch(manager)
        return manager
