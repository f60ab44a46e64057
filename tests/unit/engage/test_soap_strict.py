"""SOAP holds the REST rule: only Engage's documented answer is success; faults keep their reason.

Against the sandbox's SOAP endpoint, which acts on the send and then answers oddly.
"""

from __future__ import annotations

import pytest

from tasks.core.errors import (
    EngageClientError,
    EngageServerError,
    UnexpectedAnswer,
    UnknownRecipient,
)
from tasks.core.request import Identifier
from tasks.engage.http import make_session
from tasks.engage.soap import SoapEngageClient
from tasks.sandbox import Sandbox
from tests.unit.engage.test_rest import SANDBOX_PASSWORD, SANDBOX_USER


def soap(sandbox: Sandbox) -> SoapEngageClient:
    """A SOAP client on the sandbox's SOAP endpoint."""
    return SoapEngageClient(
        base_url=sandbox.soap_url,
        session=make_session(SANDBOX_USER, SANDBOX_PASSWORD, base_url=sandbox.soap_url),
        connect_timeout=1.0,
        read_timeout=5.0,
    )


@pytest.mark.parametrize("status", [200, 202])
def test_empty_200_or_202_after_acting_is_not_sent(sandbox: Sandbox, status: int) -> None:
    """Engage acted, then an empty 200/202 came: not `sent`, and flagged as maybe sent."""
    sandbox.state.set_faults({"script": {"message/sendSingle": [f"empty:{status}"]}})
    with pytest.raises(UnexpectedAnswer, match=f"HTTP {status}") as caught:
        soap(sandbox).send_single(23541, 33457, [])
    assert caught.value.may_have_acted
    assert sandbox.state.sends[(23541, 33457)] == 1


def test_answer_in_a_foreign_namespace_is_not_sent(sandbox: Sandbox) -> None:
    """<messageSendSingleResponse> of another service's namespace is not Engage's answer."""
    sandbox.state.set_faults({"script": {"message/sendSingle": ["foreign_ns"]}})
    with pytest.raises(UnexpectedAnswer, match="not Engage's <messageSendSingleResponse>"):
        soap(sandbox).send_single(23541, 33457, [])


def test_contact_in_a_foreign_namespace_is_no_contact(sandbox: Sandbox) -> None:
    """The same rule for contactGet."""
    sandbox.state.set_faults({"script": {"contact/get": ["foreign_ns"]}})
    with pytest.raises(UnexpectedAnswer, match="not Engage's <contactGetResponse>"):
        soap(sandbox).get_contact(Identifier("MOBILE", "48505606707"))


def test_engages_own_answer_is_still_sent(sandbox: Sandbox) -> None:
    """The sandbox's ordinary answer (200, messageSendSingleResponse in Engage's namespace)."""
    soap(sandbox).send_single(23541, 33457, [])
    assert sandbox.state.sends[(23541, 33457)] == 1


def test_soap12_sender_fault_is_classified_like_rest(sandbox: Sandbox) -> None:
    """A SOAP 1.2 Sender fault with Engage's detail: unknown recipient, with its reason."""
    sandbox.state.set_faults({"script": {"contact/get": ["soap12_fault:Sender"]}})
    with pytest.raises(UnknownRecipient, match="does not exist") as caught:
        soap(sandbox).get_contact(Identifier("MOBILE", "48505606707"))
    assert (caught.value.status, caught.value.error_actor) == (400, "CLIENT")


def test_soap12_receiver_fault_keeps_its_reason(sandbox: Sandbox) -> None:
    """A SOAP 1.2 Receiver fault without detail: a server error whose text is the reason."""
    sandbox.state.set_faults({"script": {"message/sendSingle": ["soap12_fault:Receiver"]}})
    with pytest.raises(EngageServerError, match="Database Access Limit Exceeded") as caught:
        soap(sandbox).send_single(23541, 33457, [])
    assert caught.value.error_actor == "SERVER"


def test_soap12_sender_fault_to_a_send_is_a_client_error(sandbox: Sandbox) -> None:
    """A Sender fault to a send is the 400 REST would answer: not retried as a server error."""
    sandbox.state.set_faults({"script": {"message/sendSingle": ["soap12_fault:Sender"]}})
    with pytest.raises(EngageClientError, match="INVALID_PARAMETER"):
        soap(sandbox).send_single(23541, 33457, [])
