"""Reading ledger records: Redis replies as text, stored times as ISO 8601, the shown status."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import redis

from tasks.core.masking import Masker
from tasks.core.request import SendRequest
from tasks.state.keys import RedisKeys

#: Optional record fields a status shows (times as ISO 8601, the rest masked).
_SHOWN_FIELDS = (
    "contact_id",
    "sent_at",
    "reason",
    "detail",
    "last_error",
    "retry_at",
    "priority",
    "on_done",
    "not_before",
    "expires_at",
    "cancelled_at",
)


#: What a status says of the sending policy's final states (the record keeps only the state).
POLICY_DETAILS = {
    "expired": "the deadline passed before Engage was called",
    "capped": "the recipient had its cap of sends in this lane",
    "suppressed": "the recipient opted out",
}


def text(value: object) -> str:
    """A Redis reply as text, whether the client decodes replies or not."""
    return value.decode() if isinstance(value, bytes) else str(value)


def iso(value: str | float | None) -> str | None:
    """A stored epoch timestamp as ISO 8601 UTC."""
    if value is None:
        return None
    return datetime.fromtimestamp(float(value), UTC).isoformat(timespec="milliseconds")


def read_record(client: redis.Redis, keys: RedisKeys, key: str) -> dict[str, str]:
    """The ledger record of ``key`` as text (empty when unknown)."""
    return {text(k): text(v) for k, v in client.hgetall(keys.send(key)).items()}


def shown_status(key: str, record: dict[str, str]) -> dict[str, Any]:
    """A record as callers and operators see it: masked, with ISO timestamps."""
    if not record:
        return {"key": key, "state": "unknown"}
    described: dict[str, Any]
    if "request" in record or "recipient" not in record:
        try:
            request = SendRequest.from_dict(json.loads(record["request"]))
        except (KeyError, TypeError, ValueError):
            # Written by a version that could leave a partial record (a Redis restart mid-send):
            # say what is known rather than fail the question.
            return _damaged_status(key, record)
        private = request.private_values()
        described = request.masked()
    else:
        # A final record keeps only the masked recipient (data minimisation), and an opt-out
        # at enqueue never stored the request.
        private = ()
        described = {
            "message_id": _int_or_none(record.get("message_id")),
            "recipient": record.get("recipient"),
        }
    # Written masked; masked again by the request's values for records of older versions. The
    # contact id is no personal data: it stays readable, however many digits it has.
    mask = Masker(private, readable=[record.get("contact_id", "")])
    status: dict[str, Any] = {
        "key": key,
        "state": record["state"],
        **described,
        "task_id": record.get("task_id"),
        "task_ids": json.loads(record.get("task_ids", "[]")),
        "attempts": int(record.get("attempts", 0)),
        "created_at": iso(record.get("created_at")),
        # A final record keeps one time where they are the same (sent, or ended at enqueue).
        "updated_at": iso(
            record.get("updated_at") or record.get("sent_at") or record.get("created_at")
        ),
    }
    if "recipient" in record and "request" not in record:
        # A final record leaves the default lane out (data minimisation, a few bytes each).
        status.setdefault("priority", "normal")
    if record["state"] in POLICY_DETAILS:
        status["detail"] = POLICY_DETAILS[record["state"]]
    for field in _SHOWN_FIELDS:
        if field in record:
            value = record[field]
            timed = field.endswith("_at") or field == "not_before"
            status[field] = iso(value) if timed else mask(value)
    return status


def _int_or_none(value: str | None) -> int | None:
    return None if value is None else int(value)


def _damaged_status(key: str, record: dict[str, str]) -> dict[str, Any]:
    """A record without a readable request: its state and times, and that it is damaged."""
    status: dict[str, Any] = {
        "key": key,
        "state": record.get("state", "unknown"),
        "damaged": "the ledger record has no readable request (Redis lost it)",
    }
    for field in ("sent_at", "updated_at", "created_at", "cancelled_at"):
        if field in record:
            status[field] = iso(record[field])
    for field in ("priority", "on_done", "reason"):
        if field in record:
            status[field] = record[field]
    return status
