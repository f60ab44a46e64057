"""``tasks.engage.written``: whether this thread's request started to leave, per call and thread."""

from __future__ import annotations

import contextlib
import threading

from tasks.engage import written
from tasks.engage.http import make_session
from tasks.sandbox import Sandbox
from tests.unit.engage.test_rest import SANDBOX_PASSWORD, SANDBOX_USER


def test_a_call_that_wrote_its_request_is_noted(sandbox: Sandbox) -> None:
    """After a request went out on a session of make_session, this thread says so."""
    session = make_session(SANDBOX_USER, SANDBOX_PASSWORD, base_url=sandbox.base_url)
    written.reset()
    assert not written.started()
    session.get(sandbox.base_url + "/system/getApiVersion", timeout=5)
    assert written.started()


def test_a_refused_connection_writes_nothing() -> None:
    """Nothing listens on port 9: no request could start, and none is noted."""
    session = make_session("u", "p", base_url="http://127.0.0.1:9")
    written.reset()
    with contextlib.suppress(OSError):
        session.get("http://127.0.0.1:9/x", timeout=2)
    assert not written.started()


def test_each_thread_has_its_own_note(sandbox: Sandbox) -> None:
    """A call on another thread (the worker's other tasks) does not count for this one."""
    session = make_session(SANDBOX_USER, SANDBOX_PASSWORD, base_url=sandbox.base_url)
    written.reset()
    other = threading.Thread(
        target=lambda: session.get(sandbox.base_url + "/system/getApiVersion", timeout=5)
    )
    other.start()
    other.join()
    assert not written.started()
