"""A clock that moves only when the test (or a simulated caller's sleep) says so.

fakeredis reads ``time.time()`` for ``TIME`` (the rate limit's clock) and for key expiry;
:func:`drive_fakeredis` points both at a :class:`VirtualClock`. Code that sleeps takes the clock's
:meth:`~VirtualClock.sleep` and :meth:`~VirtualClock.monotonic` (e.g. ``RateLimiter(sleep=...,
monotonic=...)``), so waiting costs no wall time and every start time is exact.

:meth:`VirtualClock.run` runs several callers as threads, one at a time: a caller runs until it
sleeps or returns, then the caller due soonest (ties in the order given) runs next, the clock set
to its wake-up time. The interleaving is the same on every run, however loaded the machine.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Callable, Sequence
from types import SimpleNamespace

import pytest
from fakeredis._socket import _base as fakeredis_socket
from fakeredis.commands_mixins import server_mixin

#: An epoch second far from the real one, so a stray read of the real clock shows.
START = 1_800_000_000.0


class VirtualClock:
    """Epoch seconds that move only by :meth:`advance` or a simulated caller's :meth:`sleep`."""

    def __init__(self, now: float = START) -> None:
        self.now = now
        self.slept: list[float] = []
        self._turn: dict[int, tuple[int, threading.Event]] = {}
        self._due: list[tuple[float, int, int]] = []
        self._yielded = threading.Event()
        self._order = 0

    def time(self) -> float:
        """Epoch seconds (what fakeredis reads as the time)."""
        return self.now

    def monotonic(self) -> float:
        """The same seconds, for code that times itself."""
        return self.now

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass."""
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` of virtual time: in a caller of :meth:`run`, until its turn."""
        self.slept.append(seconds)
        caller = self._turn.get(threading.get_ident())
        if caller is None:
            self.advance(max(seconds, 0.0))
            return
        index, turn = caller
        turn.clear()
        self._push(self.now + max(seconds, 0.0), index)
        self._yielded.set()
        turn.wait()

    def run(self, callers: Sequence[Callable[[], None]]) -> None:
        """Run ``callers`` one at a time in virtual time until every one has returned."""
        errors: list[BaseException] = []
        turns = [threading.Event() for _ in callers]

        def body(index: int) -> None:
            self._turn[threading.get_ident()] = (index, turns[index])
            turns[index].wait()
            try:
                callers[index]()
            except BaseException as error:  # reported by run() in the test's thread
                errors.append(error)
            finally:
                self._yielded.set()

        threads = [threading.Thread(target=body, args=(i,), daemon=True) for i in range(len(turns))]
        for index, thread in enumerate(threads):
            thread.start()
            self._push(self.now, index)
        while self._due:
            wake, _, index = heapq.heappop(self._due)
            self.now = max(self.now, wake)
            self._yielded.clear()
            turns[index].set()
            self._yielded.wait()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]

    def _push(self, wake: float, index: int) -> None:
        self._order += 1
        heapq.heappush(self._due, (wake, self._order, index))


def drive_fakeredis(monkeypatch: pytest.MonkeyPatch, clock: VirtualClock) -> None:
    """fakeredis' ``TIME`` and key expiry on ``clock``."""
    monkeypatch.setattr(server_mixin, "time", SimpleNamespace(time=clock.time))
    monkeypatch.setattr(fakeredis_socket, "time", SimpleNamespace(time=clock.time))
