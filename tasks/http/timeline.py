"""A send's timeline for the console, from what the ledger, the dead-letter store, the attempt
history and the audit log keep: enqueued, each Engage call with Engage's status and what came of
it (the last :data:`~tasks.state.attempts.MAX_ATTEMPT_ENTRIES`), retries, replays, the final
state, with times."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tasks.state.attempts import AttemptEntry


@dataclass(frozen=True)
class Event:
    """One line of a timeline."""

    at: str | None
    what: str
    detail: str = ""


def timeline(
    status: dict[str, Any],
    entry: dict[str, Any] | None,
    actions: list[dict[str, Any]],
    attempts: Sequence[AttemptEntry] = (),
) -> list[Event]:
    """The events of one send, oldest first (all values already masked; an attempt entry holds
    no private value)."""
    events: list[Event] = [_attempt(attempt) for attempt in attempts]
    if status.get("created_at"):
        lane = status.get("priority", "normal")
        events.append(Event(status["created_at"], "enqueued", f"lane {lane}"))
    if entry is not None:
        events.append(
            Event(
                entry.get("first_failure_at"),
                "first failure",
                f"sendSingle attempts so far: {entry.get('attempts', 0)}",
            )
        )
        error = entry.get("error") or {}
        answer = _engage_answer(error)
        events.append(
            Event(
                entry.get("last_failure_at"),
                f"dead-lettered: {entry.get('reason')}",
                "; ".join(part for part in (answer, str(entry.get("detail") or "")) if part),
            )
        )
    for action in actions:
        events.append(
            Event(
                _iso(action.get("at")),
                f"console: {action.get('action')}",
                f"by {action.get('by')}: {action.get('outcome')}",
            )
        )
    state = status.get("state")
    if state == "retrying":
        events.append(
            Event(status.get("updated_at"), "retrying", str(status.get("last_error", "")))
        )
        events.append(Event(status.get("retry_at"), "next attempt due"))
    elif state == "sent":
        events.append(
            Event(status.get("sent_at"), "sent", f"contact {status.get('contact_id', '?')}")
        )
    elif state == "dead_lettered" and entry is None:
        events.append(
            Event(
                status.get("updated_at"),
                f"dead-lettered: {status.get('reason')}",
                str(status.get("detail", "")),
            )
        )
    elif state in ("queued", "sending"):
        events.append(
            Event(status.get("updated_at"), state, f"{status.get('attempts', 0)} attempts so far")
        )
    return sorted(events, key=lambda event: event.at or "")


def _attempt(attempt: AttemptEntry) -> Event:
    """One Engage call: ``message/sendSingle: retry`` / ``HTTP 503 ...; retry in 30 s``."""
    answer = f"HTTP {attempt.status}" if attempt.status is not None else "no answer"
    parts = [answer + (f" {attempt.error}" if attempt.error else "")]
    if attempt.retry_in is not None:
        parts.append(f"retry in {attempt.retry_in:g} s")
    if attempt.reason is not None:
        parts.append(f"reason {attempt.reason}")
    return Event(_iso(attempt.at), f"{attempt.stage}: {attempt.outcome}", "; ".join(parts))


def _engage_answer(error: dict[str, Any]) -> str:
    """Engage's last answer as one phrase: ``HTTP 400 NO_SUCH_OBJECT``."""
    if not error:
        return ""
    parts = [f"HTTP {error['status']}" if error.get("status") is not None else ""]
    parts += [str(error["errorCode"])] if error.get("errorCode") else []
    return "Engage answered " + " ".join(part for part in parts if part)


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    return datetime.fromtimestamp(float(value), UTC).isoformat(timespec="milliseconds")
