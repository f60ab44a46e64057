"""The public API for web apps and scripts: enqueue a send, ask how it went, replay dead letters."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Unpack

from celery import uuid

from tasks.core.errors import InvalidSendRequest
from tasks.core.outages import unavailable_as
from tasks.core.request import (
    RecipientFields,
    build_identifier,
    build_send_request,
    validate_idempotency_key,
)
from tasks.core.send_options import DEFAULT_PRIORITY, Priority, parse_priority, validate_task_name
from tasks.core.sending_policy import Deadline, SendingPolicy, resolve_deadline
from tasks.delivery.events import log_event
from tasks.delivery.runtime import Runtime, current_runtime
from tasks.state.enums import Reason
from tasks.testing import active_outbox
from tasks.worker import cancellation
from tasks.worker.app import engage_settings
from tasks.worker.publish import SendHandle, enqueue, publish_for

__all__ = [
    "SendHandle",
    "cancel_sends",
    "delivery_status",
    "replay_dead_letter",
    "send_prepared_sms",
    "suppress",
    "unsuppress",
]


def send_prepared_sms(
    message_id: int,
    *,
    mobile: str | None = None,
    email: str | None = None,
    app_alias: str | None = None,
    external_id: str | None = None,
    recipient_id: int | None = None,
    parameters: Mapping[str, str] | None = None,
    idempotency_key: str | None = None,
    priority: Priority | str = DEFAULT_PRIORITY,
    on_done: str | None = None,
    expires_in: float | None = None,
    send_by: datetime | None = None,
    create_contact: bool | None = None,
) -> SendHandle:
    """Validate and enqueue one prepared SMS; the same key twice enqueues it once.

    Sending policy (README: Sending policy): ``expires_in`` (seconds) or ``send_by`` (an aware
    datetime) is the deadline, by default the lane's (``ENGAGE_URGENT_TTL``...); a send not
    handed to Engage by then ends ``expired``. ``create_contact=True`` (default
    ``ENGAGE_CREATE_CONTACTS``) creates a recipient Engage does not know instead of
    dead-lettering it ``unknown_recipient``. An opted-out recipient is no error: the send ends
    ``suppressed`` (state in the handle, callback published).

    ``priority`` is the lane, ``"urgent"``, ``"normal"`` or ``"bulk"``: a waiting urgent send
    gets the next Engage slot before normal ones, normal before bulk. ``on_done`` names a Celery
    task (default ``ENGAGE_ON_DONE_TASK``) published as ``send_task(on_done, args=[status])``
    once the send is ``sent`` or ``dead_lettered``, ``status`` being what
    :func:`delivery_status` returns; at least once, so deduplicate by ``status["key"]``.

    Raises InvalidSendRequest for bad input, IdempotencyConflict when the key was used for a
    different request, and ServiceUnavailable when Redis or the broker does not answer; in each
    case nothing is enqueued. Without a key, a fresh one is made
    (``auto:<uuid>``): that send is still sent at most once through every retry, redelivery and
    replay, but calling again makes a new send, as a new Celery task would. Give a key to make
    repeating the call safe.

    Inside :func:`tasks.testing.captured_sends` (a host app's unit tests) the send is validated
    the same way and captured instead: no Redis, broker or worker.
    """
    recipient: RecipientFields = {
        "mobile": mobile,
        "email": email,
        "app_alias": app_alias,
        "external_id": external_id,
        "recipient_id": recipient_id,
    }
    outbox = active_outbox()
    if outbox is not None:
        # The sending policy's arguments are checked as they would be; the outbox keeps the send.
        _check_policy_arguments(priority, expires_in, send_by, create_contact, SendingPolicy())
        return outbox.capture(
            message_id,
            **recipient,
            parameters=parameters,
            idempotency_key=idempotency_key,
            priority=priority,
            on_done=on_done,
        )
    rt = _runtime()  # builds no connection: nothing is written before validation passes
    lane = parse_priority(priority)
    callback = None if on_done is None else validate_task_name(on_done)
    request = build_send_request(
        message_id, **recipient, parameters=parameters, numbers=rt.settings.numbers
    )
    key = f"auto:{uuid()}" if idempotency_key is None else validate_idempotency_key(idempotency_key)
    deadline = _check_policy_arguments(
        lane, expires_in, send_by, create_contact, rt.settings.policy
    )
    return enqueue(
        rt,
        request,
        key,
        priority=lane,
        on_done=callback,
        deadline=deadline,
        create_contact=create_contact,
    )


def _check_policy_arguments(
    priority: Priority | str,
    expires_in: object,
    send_by: object,
    create_contact: object,
    policy: SendingPolicy,
) -> Deadline:
    """The send's deadline; InvalidSendRequest for a bad deadline or create_contact."""
    if create_contact is not None and not isinstance(create_contact, bool):
        raise InvalidSendRequest("create_contact", "must be True or False")
    return resolve_deadline(expires_in, send_by, parse_priority(priority), policy, now=time.time())


def delivery_status(key: str) -> dict[str, Any]:
    """Where the send under ``key`` stands (queued ... sent, dead_lettered, or unknown).

    Raises ServiceUnavailable when Redis does not answer. Inside
    :func:`tasks.testing.captured_sends`: ``queued`` for a captured key, else ``unknown``.
    """
    outbox = active_outbox()
    if outbox is not None:
        return outbox.status(key)
    rt = _runtime()
    with unavailable_as("redis", rt.settings.redis_url):
        return rt.ledger.status(key)


def replay_dead_letter(key: str) -> str:
    """Re-enter a dead-lettered send under its key: ``requeued``, or ``missing``.

    ``missing``: no dead-letter entry under the key (never dead-lettered, replayed already, or
    found sent meanwhile: a late success removes its entry). Nothing is sent then.

    Raises ServiceUnavailable when Redis or the broker does not answer; the entry stays put.
    """
    rt = _runtime()
    task_ids = [uuid(), uuid()]
    with unavailable_as("redis", rt.settings.redis_url):
        # The entry, or for one that left at the store's size bound, the record's own fields.
        entry: dict[str, Any] = rt.dead_letters.get(key) or dict(rt.ledger.record(key))
        outcome, request = rt.dead_letters.replay(key, task_ids)
        record = rt.ledger.record(key) if request is not None else {}
    if request is not None:
        try:
            lane = _lane_of(record or entry)
            publish_for(rt, request, key, task_ids, priority=lane, on_done=record.get("on_done"))
        except BaseException as err:
            # Put it back where it was rather than leave a queued send with no task.
            with unavailable_as("redis", rt.settings.redis_url):
                rt.dead_letters.add(
                    key,
                    reason=Reason(entry.get("reason") or Reason.INTERNAL_ERROR),
                    detail=f"replay not published: {err}",
                    error=entry.get("error"),
                    task_ids=task_ids,
                )
            raise
        log_event("replayed", key=key, task_id=task_ids[-1], recipient=request.identifier.masked())
    return outcome


def suppress(**recipient: Unpack[RecipientFields]) -> bool:
    """Opt a recipient out: no send to it is made from now on (it ends ``suppressed``).

    Exactly one identifier (``mobile``, ``email``, ``app_alias``, ``external_id`` or
    ``recipient_id``), read as :func:`send_prepared_sms` reads it (so ``+48 505 606 707`` and
    ``0048505606707`` are the same entry). Stored as a keyed digest, never in clear.
    True when it was not on the list yet. Raises InvalidSendRequest or ServiceUnavailable.
    """
    return _change_opt_out(recipient, add=True)


def unsuppress(**recipient: Unpack[RecipientFields]) -> bool:
    """Take a recipient off the opt-out list; True when it was on it."""
    return _change_opt_out(recipient, add=False)


def _change_opt_out(recipient: RecipientFields, *, add: bool) -> bool:
    """Add the recipient to the opt-out list or take it off; True when that changed the list."""
    rt = _runtime()
    identifier = build_identifier(**recipient, numbers=rt.settings.numbers)
    with unavailable_as("redis", rt.settings.redis_url):
        change = rt.suppressions.add if add else rt.suppressions.remove
        changed = change([identifier]) == 1
    if add:
        log_event("opted_out", key="-", recipient=identifier.masked(), added=changed)
    else:
        log_event("opt_out_removed", key="-", recipient=identifier.masked(), removed=changed)
    return changed


def cancel_sends(
    keys: Sequence[str] = (),
    *,
    lane: Priority | str | None = None,
    schedule: str | None = None,
) -> dict[str, str]:
    """Stop sends that have not started; each key's outcome.

    ``keys``, or every unfinished send of ``lane`` and/or of ``schedule`` (its runs' keys).
    ``cancelled_now``: final state ``cancelled``, never sent, callback published. Otherwise the
    state that kept it: ``sending`` (being sent now: not stoppable), ``sent``,
    ``dead_lettered``, ``cancelled`` (already), ``unknown``. Raises ServiceUnavailable when Redis
    does not answer (the keys cancelled before it went stay cancelled).
    """
    rt = _runtime()
    with unavailable_as("redis", rt.settings.redis_url):
        chosen = list(keys)
        if lane is not None or schedule is not None:
            lane_ = None if lane is None else parse_priority(lane)
            chosen += cancellation.select(rt, lane=lane_, schedule=schedule)
        return cancellation.cancel(rt, chosen)


def _lane_of(entry: dict[str, Any]) -> Priority:
    """The lane a dead-lettered send was enqueued in (normal for sends filed before lanes)."""
    return Priority(entry.get("priority") or DEFAULT_PRIORITY)


def _runtime() -> Runtime:
    return current_runtime(engage_settings())
