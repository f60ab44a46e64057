"""A real worker against the sandbox over TLS, whose answer to a send is a broken TLS record.

Engage acted before the record broke (as behind a failing TLS-inspecting proxy): counting that
as "not sent" retried it and sent the SMS twice. It must end ``outcome_unknown``, sent once.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tasks.api import delivery_status, send_prepared_sms
from tasks.sandbox import Sandbox
from tests.integration.conftest import WorkerFactory, wait_for
from tests.support.tls import SelfSigned, self_signed

pytestmark = pytest.mark.integration


@pytest.fixture
def certificate(tmp_path: Path) -> SelfSigned:
    """A certificate for 127.0.0.1."""
    return self_signed(tmp_path)


@pytest.fixture
def tls_sandbox(certificate: SelfSigned) -> Iterator[Sandbox]:
    """The sandbox over TLS."""
    with Sandbox(tls=certificate.server_context()) as sandbox:
        yield sandbox


def test_tls_record_broken_after_the_send_is_never_resent(
    start_workers: WorkerFactory, tls_sandbox: Sandbox, certificate: SelfSigned
) -> None:
    """The worker records outcome_unknown; Engage sent it once; nothing calls sendSingle again."""
    tls_sandbox.state.set_faults({"script": {"message/sendSingle": ["tls_break"]}})
    start_workers(tls_sandbox.base_url, REQUESTS_CA_BUNDLE=str(certificate.cert))
    send_prepared_sms(23541, mobile="+48505606707", idempotency_key="tls-1")
    status = wait_for(
        lambda: (s := delivery_status("tls-1"))["state"] in ("sent", "dead_lettered") and s,
        what="the send to end",
    )
    assert status["state"] == "dead_lettered"
    assert status["reason"] == "outcome_unknown"
    assert len(tls_sandbox.state.calls_to("message/sendSingle")) == 1
    assert tls_sandbox.state.sends == {(23541, 33457): 1}
