"""Answer bodies are read bounded in size (after decompression) and time, on REST and SOAP."""

from __future__ import annotations

import time

import pytest
import requests

from tasks.core.errors import EngageClientError, EngageServerError, UnexpectedAnswer
from tasks.core.request import Identifier
from tasks.engage.bodies import MAX_ANSWER_BYTES, BodyNotRead, read_body
from tasks.engage.http import make_session
from tasks.engage.soap import SoapEngageClient
from tasks.sandbox import Sandbox
from tests.unit.engage.test_rest import SANDBOX_PASSWORD, SANDBOX_USER, client_for

#: Inflated size of the bombs here: over the limit, small enough for the code before the limit.
BOMB_MIB = 48


def soap_client(sandbox: Sandbox) -> SoapEngageClient:
    """A SOAP client on the sandbox's SOAP endpoint."""
    return SoapEngageClient(
        base_url=sandbox.soap_url,
        session=make_session(SANDBOX_USER, SANDBOX_PASSWORD, base_url=sandbox.soap_url),
        connect_timeout=1.0,
        read_timeout=5.0,
    )


def test_gzip_bomb_error_answer_is_not_inflated(sandbox: Sandbox) -> None:
    """A 400 whose gzip body inflates to 48 MiB: classified by its status, its body not read."""
    sandbox.state.set_faults({"script": {"message/sendSingle": [f"gzip_bomb:400:{BOMB_MIB}"]}})
    with pytest.raises(EngageClientError, match="larger than 1 MiB, not read") as caught:
        client_for(sandbox.base_url, read=5.0).send_single(23541, 33457, [])
    assert caught.value.status == 400
    assert sandbox.state.sends[(23541, 33457)] == 0


def test_gzip_bomb_success_status_is_an_unexpected_answer(sandbox: Sandbox) -> None:
    """A 200 to contact/get too large to read is no contact: an unexpected answer."""
    sandbox.state.set_faults({"script": {"contact/get": [f"gzip_bomb:200:{BOMB_MIB}"]}})
    with pytest.raises(UnexpectedAnswer, match="larger than 1 MiB"):
        client_for(sandbox.base_url, read=5.0).get_contact(Identifier("MOBILE", "48505606707"))


def test_gzip_bomb_soap_fault_is_a_server_error_unread(sandbox: Sandbox) -> None:
    """SOAP reads its answers through the same bound: a 500 bomb is a server error, unread."""
    sandbox.state.set_faults({"script": {"message/sendSingle": [f"gzip_bomb:500:{BOMB_MIB}"]}})
    with pytest.raises(EngageServerError, match="larger than 1 MiB, not read"):
        soap_client(sandbox).send_single(23541, 33457, [])


def test_session_still_works_after_an_unread_answer(sandbox: Sandbox) -> None:
    """The half-read connection is closed, not handed to the next call."""
    client = client_for(sandbox.base_url, read=5.0)
    sandbox.state.set_faults({"script": {"message/sendSingle": ["gzip_bomb:400:4"]}})
    with pytest.raises(EngageClientError):
        client.send_single(23541, 33457, [])
    client.send_single(23541, 33457, [])
    assert sandbox.state.sends[(23541, 33457)] == 1


def test_body_over_the_limit_is_cut_at_the_limit(sandbox: Sandbox) -> None:
    """read_body keeps at most the limit of decoded bytes and says why it stopped."""
    sandbox.state.set_faults({"script": {"contact/get": ["gzip_bomb:400:2"]}})
    response = _raw_lookup(sandbox)
    with pytest.raises(BodyNotRead, match="larger than 1 MiB"):
        read_body(response, deadline=time.monotonic() + 30)
    assert len(response.content) <= MAX_ANSWER_BYTES


def test_body_not_done_by_the_deadline_is_cut(sandbox: Sandbox) -> None:
    """A body still coming at the deadline is not read on (the deadline is checked per chunk)."""
    sandbox.state.set_faults({"script": {"contact/get": ["gzip_bomb:400:1"]}})
    response = _raw_lookup(sandbox)
    with pytest.raises(BodyNotRead, match="not read in time"):
        read_body(response, deadline=time.monotonic() - 1)


def test_ordinary_answers_read_whole(sandbox: Sandbox) -> None:
    """Within the bounds nothing changes: the contact is read."""
    contact = client_for(sandbox.base_url).get_contact(Identifier("MOBILE", "48505606707"))
    assert contact.contact_id == 33457


def _raw_lookup(sandbox: Sandbox) -> requests.Response:
    session = make_session(SANDBOX_USER, SANDBOX_PASSWORD, base_url=sandbox.base_url)
    return session.post(
        sandbox.base_url + "/contact/get",
        json={"type": "MOBILE", "value": "48505606707"},
        stream=True,
        timeout=5,
    )
