"""TLS failures against a real local TLS server (the sandbox over TLS): when is a send not sent?

Only a failure before any byte of the request was written counts as "not sent"; a TLS record
broken after the request left (a TLS-inspecting proxy failing mid-answer) may follow a send.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tasks.core.errors import OutcomeUnknown, RequestNotSent
from tasks.core.request import Identifier
from tasks.engage.http import make_session
from tasks.engage.rest import RestEngageClient
from tasks.sandbox import Sandbox
from tests.support.tls import SelfSigned, self_signed
from tests.unit.engage.test_rest import SANDBOX_PASSWORD, SANDBOX_USER


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> SelfSigned:
    """A certificate for 127.0.0.1."""
    return self_signed(Path(tmp_path_factory.mktemp("tls")))


@pytest.fixture
def tls_sandbox(certificate: SelfSigned) -> Iterator[Sandbox]:
    """The sandbox, served over TLS with that certificate."""
    with Sandbox(tls=certificate.server_context()) as sandbox:
        yield sandbox


def client(
    sandbox: Sandbox, trust: Path | bool, session: requests.Session | None = None
) -> RestEngageClient:
    """A client that trusts ``trust`` (a CA file), or the system's CAs (True)."""
    session = session or make_session(SANDBOX_USER, SANDBOX_PASSWORD, base_url=sandbox.base_url)
    session.verify = str(trust) if isinstance(trust, Path) else trust
    return RestEngageClient(
        base_url=sandbox.base_url, session=session, connect_timeout=2, read_timeout=2
    )


def test_the_tls_sandbox_answers_a_trusting_client(
    tls_sandbox: Sandbox, certificate: SelfSigned
) -> None:
    """The setting the other tests rely on: over TLS, a send is a 204 and is recorded."""
    client(tls_sandbox, certificate.cert).send_single(23541, 33457, [])
    assert tls_sandbox.state.sends[(23541, 33457)] == 1


def test_tls_record_broken_after_the_send_is_outcome_unknown(
    tls_sandbox: Sandbox, certificate: SelfSigned
) -> None:
    """Engage acted, then the answer's TLS record was corrupt: the send may have happened."""
    tls_sandbox.state.set_faults({"script": {"message/sendSingle": ["tls_break"]}})
    with pytest.raises(OutcomeUnknown, match="TLS error after the request was sent"):
        client(tls_sandbox, certificate.cert).send_single(23541, 33457, [])
    assert tls_sandbox.state.sends[(23541, 33457)] == 1


def test_tls_record_broken_after_a_lookup_is_outcome_unknown(
    tls_sandbox: Sandbox, certificate: SelfSigned
) -> None:
    """The same rule for contact/get (the retry policy decides a lookup is safe to repeat)."""
    tls_sandbox.state.set_faults({"script": {"contact/get": ["tls_break"]}})
    with pytest.raises(OutcomeUnknown):
        client(tls_sandbox, certificate.cert).get_contact(Identifier("MOBILE", "48505606707"))


def test_failed_handshake_is_not_sent(tls_sandbox: Sandbox) -> None:
    """A certificate the client does not trust fails before any byte of the request is written."""
    with pytest.raises(RequestNotSent, match="TLS handshake failed"):
        client(tls_sandbox, trust=True).send_single(23541, 33457, [])
    assert tls_sandbox.state.calls == []


def test_reused_connection_is_judged_per_call(
    tls_sandbox: Sandbox, certificate: SelfSigned
) -> None:
    """After a call that wrote its request, the next call's handshake failure is still not sent."""
    session = make_session(SANDBOX_USER, SANDBOX_PASSWORD, base_url=tls_sandbox.base_url)
    client(tls_sandbox, certificate.cert, session).send_single(23541, 33457, [])
    tls_sandbox.state.set_faults({"script": {"message/sendSingle": ["tls_break"]}})
    with pytest.raises(OutcomeUnknown):
        client(tls_sandbox, certificate.cert, session).send_single(23541, 33457, [])
    # A new connection whose handshake fails: nothing of this request left.
    session.close()
    with pytest.raises(RequestNotSent):
        client(tls_sandbox, True, session).send_single(23541, 33457, [])
    assert tls_sandbox.state.sends[(23541, 33457)] == 2
