"""A call's deadline shuts the socket of the connection it uses, unless the call finished."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tasks.engage.deadline import Deadline


@dataclass
class Connection:
    """What the deadline sees of a urllib3 connection: its socket."""

    sock: socket.socket | None


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """Two connected sockets: the call's end, and the server's."""
    ours, theirs = socket.socketpair()
    yield ours, theirs
    ours.close()
    theirs.close()


def test_an_expired_call_has_its_socket_shut(pair: tuple[socket.socket, socket.socket]) -> None:
    """A read blocked on the call's socket ends at once (EOF) when the deadline passes."""
    ours, _ = pair
    call = Deadline(30)
    call.attach(Connection(ours))
    call.expire()
    assert call.expired
    assert ours.recv(1) == b""


def test_a_finished_call_is_left_alone(pair: tuple[socket.socket, socket.socket]) -> None:
    """The connection goes back to the pool: a late watchdog must not cut it."""
    ours, theirs = pair
    call = Deadline(30)
    call.attach(Connection(ours))
    call.finish()
    call.expire()
    assert not call.expired
    theirs.sendall(b"x")
    assert ours.recv(1) == b"x"


def test_a_connection_attached_after_the_deadline_is_cut_at_once(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    """A call that only now got its connection, past its deadline, does not get to use it."""
    ours, _ = pair
    call = Deadline(30)
    call.expire()
    call.attach(Connection(ours))
    assert ours.recv(1) == b""


def test_a_connection_not_yet_connected_is_no_error() -> None:
    """Expiring while the connection has no socket yet does nothing (connect has its timeout)."""
    call = Deadline(30)
    call.attach(Connection(None))
    call.expire()
    assert call.expired
