"""The API's bodies as OpenAPI describes them (``/openapi.json``); the tests hold the two together.

Requests are read by :func:`tasks.http.sends.parse_send_body`, not by these models, so that an
invalid one is a 400 naming its field in the package's own words; :class:`SendRequestBody` is
what the document shows of it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tasks.http.problems import ErrorBody


class SendRequestBody(BaseModel):
    """One prepared SMS: the message, exactly one recipient identifier, its placeholders."""

    model_config = ConfigDict(extra="forbid")

    message_id: int = Field(description="The prepared message's id in Engage", gt=0)
    mobile: str | None = Field(None, description="Mobile number with country code")
    email: str | None = Field(None, description="The contact's e-mail address")
    app_alias: str | None = Field(None, description="The contact's mobile app alias")
    external_id: str | None = Field(None, description="The contact's id in an external system")
    recipient_id: int | None = Field(None, description="The Engage contact id (no lookup)")
    parameters: dict[str, str] = Field(
        default_factory=dict, description="Placeholder values (at most 50)"
    )
    priority: Literal["urgent", "normal", "bulk"] = Field(
        "normal", description="The lane: urgent before normal before bulk"
    )
    callback_url: str | None = Field(
        None,
        description="Gets the final status as a signed POST (Engage-Signature: t=UNIX,"
        "v1=HMAC-SHA256 of 't.body' under the token's callback secret); https://, or http:// to "
        "loopback only",
    )
    expires_in: float | None = Field(
        None, description="Deadline in seconds: not sent by then, the send ends expired", gt=0
    )
    send_by: str | None = Field(
        None, description="Deadline as an ISO 8601 moment with its offset (not with expires_in)"
    )
    create_contact: bool | None = Field(
        None, description="Create the recipient in Engage when it does not exist"
    )


class SendAccepted(BaseModel):
    """The send is enqueued (``created``), or was already under this key (not created)."""

    key: str
    state: str
    created: bool
    status_url: str


class SendStatus(BaseModel):
    """Where a send stands, as ``delivery_status`` returns it (masked)."""

    model_config = ConfigDict(extra="allow")

    key: str
    state: Literal[
        "queued",
        "sending",
        "retrying",
        "sent",
        "dead_lettered",
        "deferred",
        "expired",
        "capped",
        "suppressed",
        "cancelled",
    ]


class Health(BaseModel):
    """``/healthz`` and ``/readyz``."""

    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = Field(default_factory=dict)


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The error answers of an operation, for its ``responses``."""
    return {code: {"model": ErrorBody, "description": DESCRIPTIONS[code]} for code in codes}


DESCRIPTIONS = {
    400: "invalid_request (field names the culprit) or idempotency_key_missing",
    401: "unauthorized: no token, or an unknown or revoked one",
    403: "forbidden: the token's scope does not allow this",
    404: "not_found",
    413: "payload_too_large: the body is over 64 KiB",
    422: "idempotency_key_reused: the key was used for a different request",
    429: "rate_limited or daily_cap_reached (Retry-After says when to try again)",
    503: "service_unavailable: Redis or the broker did not answer (Retry-After)",
}
