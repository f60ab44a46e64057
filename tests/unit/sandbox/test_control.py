"""The sandbox's control API over HTTP: a wrong body is one clear line, and changes nothing."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from tasks.sandbox import Sandbox


def post(sandbox: Sandbox, path: str, body: bytes) -> tuple[int, Any]:
    """POST ``body`` to a control path: (status, parsed answer)."""
    request = urllib.request.Request(sandbox.root_url + path, data=body, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310  (loopback)
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_contacts_posted_as_documented_are_found(sandbox: Sandbox) -> None:
    """{"contacts": [...]} adds each contact, so contact/get finds it."""
    body = {"contacts": [{"type": "MOBILE", "value": "48600000009", "contactId": 9}]}
    assert post(sandbox, "/_sandbox/contacts", json.dumps(body).encode()) == (200, {"ok": True})
    assert sandbox.state.contact_get("MOBILE", "48600000009")[1] == 9


@pytest.mark.parametrize(
    ("path", "body", "said"),
    [
        (
            "/_sandbox/contacts",
            b'[{"type": "MOBILE", "value": "48600000009", "contactId": 9}]',
            'the body must be {"contacts": [{"type": "MOBILE"',
        ),
        ("/_sandbox/contacts", b"{not json", "the body is not JSON"),
        (
            "/_sandbox/contacts",
            b'{"contacts": [{"type": "PHONE", "value": "1", "contactId": 9}]}',
            "contacts[0].type must be one of MOBILE, EMAIL",
        ),
        (
            "/_sandbox/contacts",
            b'{"contacts": [{"type": "MOBILE", "value": "1", "contactId": -3}]}',
            "contacts[0].contactId must be a positive whole number",
        ),
        ("/_sandbox/messages", b'{"messages": [{"id": 5}]}', "messages[0].messageId must be"),
        ("/_sandbox/faults", b"[503]", "the body must be a fault plan object"),
        ("/_sandbox/faults", b'{"script": {"contact/get": ["nonsense"]}}', "nonsense"),
    ],
)
def test_wrong_bodies_get_a_clear_400_and_change_nothing(
    sandbox: Sandbox, path: str, body: bytes, said: str
) -> None:
    """A body that is not what the path takes: 400 naming what was expected, no TypeError."""
    status, answer = post(sandbox, path, body)
    assert status == 400
    assert answer["error"].startswith(f"POST {path}: ")
    assert said in answer["error"]
    assert "TypeError" not in answer["error"]
    assert "KeyError" not in answer["error"]
    assert sandbox.state.contact_get("MOBILE", "1")[1] is None


def test_unknown_control_path_is_404(sandbox: Sandbox) -> None:
    """A control path the sandbox does not have is Not Found, whatever the body."""
    assert post(sandbox, "/_sandbox/nothing", b"[]")[0] == 404
