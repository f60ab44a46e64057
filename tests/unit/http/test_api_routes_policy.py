"""The JSON API with the sending policy: deadlines, contact creation, opted-out recipients."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tasks.api import suppress
from tasks.delivery.runtime import Runtime
from tasks.http.tokens import NewToken
from tests.support.broker import Broker
from tests.support.http_client import bearer

BODY: dict[str, Any] = {"message_id": 23541, "mobile": "+48 505 606 707"}


def test_expires_in_send_by_and_create_contact_reach_the_send(
    client: TestClient, sender: NewToken, runtime: Runtime
) -> None:
    """The three policy fields become the record's deadline and creation flag."""
    body = {**BODY, "expires_in": 30, "create_contact": True}
    assert client.post("/v1/sends", json=body, headers=bearer(sender, "k1")).status_code == 202
    assert "expires_at" in runtime.ledger.status("k1")
    assert runtime.ledger.record("k1")["create_contact"] == "1"
    moment = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)
    by = {**BODY, "send_by": moment.astimezone(timezone(timedelta(hours=1))).isoformat()}
    assert client.post("/v1/sends", json=by, headers=bearer(sender, "k2")).status_code == 202
    expires_at = datetime.fromisoformat(runtime.ledger.status("k2")["expires_at"])
    assert expires_at == moment


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"expires_in": 0}, "expires_in"),
        ({"expires_in": "soon"}, "expires_in"),
        ({"send_by": "2030-01-01T09:00:00"}, "send_by"),
        ({"send_by": "tomorrow"}, "send_by"),
        ({"expires_in": 5, "send_by": "2030-01-01T09:00:00+01:00"}, "expires_in"),
        ({"create_contact": "yes"}, "create_contact"),
    ],
)
def test_a_bad_policy_field_is_a_400_naming_it(
    client: TestClient, sender: NewToken, broker: Broker, fields: dict[str, Any], field: str
) -> None:
    """Each bad value answers 400 invalid_request with the field, and enqueues nothing."""
    answer = client.post("/v1/sends", json={**BODY, **fields}, headers=bearer(sender, "k1"))
    assert answer.status_code == 400
    assert answer.json()["field"] == field
    assert broker.published == []


def test_an_opted_out_recipient_is_accepted_and_ends_suppressed(
    client: TestClient, sender: NewToken, broker: Broker
) -> None:
    """No error for the caller: 202 with state suppressed, and its status says so."""
    suppress(mobile="+48505606707")
    answer = client.post("/v1/sends", json=BODY, headers=bearer(sender, "k1"))
    assert answer.status_code == 202
    assert answer.json()["state"] == "suppressed"
    status = client.get("/v1/sends/k1", headers=bearer(sender))
    assert status.json()["state"] == "suppressed"
    assert broker.published == []
