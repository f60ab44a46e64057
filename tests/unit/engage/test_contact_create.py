"""contact/create over REST and SOAP against the sandbox: the new id, and "already exists"."""

from __future__ import annotations

import pytest

from tasks.core.errors import EngageClientError, EngageServerError
from tasks.core.request import Identifier
from tasks.core.settings import EngageSettings
from tasks.engage import build_client
from tasks.engage.base import EngageClient
from tasks.engage.contact_create import already_exists
from tasks.sandbox import Sandbox
from tasks.sandbox.state import CREATED_IDS_FROM
from tests.support.environments import SANDBOX_PASSWORD, SANDBOX_USER

TRANSPORTS = ["rest", "soap"]
NEW = Identifier("MOBILE", "48600700800")


def client(sandbox: Sandbox, transport: str) -> EngageClient:
    """A client of the transport with short timeouts."""
    url = sandbox.soap_url if transport == "soap" else sandbox.base_url
    settings = EngageSettings(url, SANDBOX_USER, SANDBOX_PASSWORD, transport)
    return build_client(settings, connect_timeout=1.0, read_timeout=1.0)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_create_answers_the_new_contact_id_and_lookup_finds_it(
    sandbox: Sandbox, transport: str
) -> None:
    """A created contact is found by contact/get with the same id."""
    engage = client(sandbox, transport)
    created = engage.create_contact(NEW)
    assert created.contact_id >= CREATED_IDS_FROM
    assert engage.get_contact(NEW).contact_id == created.contact_id
    (call,) = sandbox.state.calls_to("contact/create")
    assert call.body == {"mobileNumber": "48600700800"}
    assert sandbox.state.created == [("MOBILE", "48600700800")]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_creating_a_known_contact_is_already_exists(sandbox: Sandbox, transport: str) -> None:
    """OBJECT_ALREADY_EXISTS comes back as a client error that already_exists() recognises."""
    with pytest.raises(EngageClientError) as caught:
        client(sandbox, transport).create_contact(Identifier("MOBILE", "48505606707"))
    assert caught.value.status == 400
    assert already_exists(caught.value)
    assert sandbox.state.created == []


@pytest.mark.parametrize(
    ("identifier", "field"),
    [
        (Identifier("EMAIL", "new@example.com"), "emailAddress"),
        (Identifier("APP_ALIAS", "alias-1"), "applicationAlias"),
        (Identifier("EXTERNAL", "crm-7"), "identifier"),
    ],
)
def test_each_identifier_type_uses_its_contact_field(
    sandbox: Sandbox, identifier: Identifier, field: str
) -> None:
    """The contact object names the identifier by the field Engage documents."""
    client(sandbox, "rest").create_contact(identifier)
    (call,) = sandbox.state.calls_to("contact/create")
    assert call.body == {field: identifier.value}


def test_a_server_error_is_not_already_exists(sandbox: Sandbox) -> None:
    """A 503 on create is a server error, retried like any other."""
    sandbox.state.set_faults({"script": {"contact/create": [503]}})
    with pytest.raises(EngageServerError) as caught:
        client(sandbox, "rest").create_contact(NEW)
    assert not already_exists(caught.value)
