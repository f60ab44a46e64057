"""A test double for host applications: capture sends instead of enqueuing them.

In a web app's own unit tests, with no Redis, broker or worker::

    from tasks.testing import captured_sends

    def test_shipping_an_order_texts_the_customer():
        with captured_sends() as outbox:
            ship(order)                       # calls tasks.send_prepared_sms(...) somewhere
        (sms,) = outbox.sends
        assert sms.message_id == 23541
        assert sms.mobile == "48505606707"    # as Engage would get it: digits, country code
        assert sms.parameters == {"firstName": "Ann"}
        assert sms.key == f"order-{order.id}-shipped"

Inside the block, :func:`tasks.send_prepared_sms` validates exactly as it does for real (an
invalid number raises ``InvalidSendRequest``; the same key with another request raises
``IdempotencyConflict``; the same key and request again returns ``created=False`` and captures
nothing more), then records the send instead of writing to Redis or publishing a task.
:func:`tasks.delivery_status` answers ``queued`` for a captured key, ``unknown`` otherwise.
:meth:`SendOutbox.final_status` builds the status a completion callback (``on_done``) would get,
so the app's callback can be tested with it. Like anymail's test backend or httpx's
``MockTransport``: the real code runs, only the edge is swapped.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from celery import uuid

from tasks.core.errors import IdempotencyConflict
from tasks.core.numbers import NumberPolicy
from tasks.core.request import SendRequest, build_send_request, validate_idempotency_key
from tasks.core.send_options import Priority, parse_priority, validate_task_name
from tasks.worker.publish import SendHandle

__all__ = ["CapturedSend", "SendOutbox", "captured_sends"]

#: The states a completion callback is published with.
FINAL_STATES = ("sent", "dead_lettered")


@dataclass(frozen=True)
class CapturedSend:
    """One send as :func:`tasks.send_prepared_sms` would have enqueued it."""

    key: str
    task_id: str
    request: SendRequest
    priority: Priority
    on_done: str | None

    @property
    def message_id(self) -> int:
        """The prepared message's id in Engage."""
        return self.request.message_id

    @property
    def identifier_type(self) -> str:
        """How Engage finds the contact: MOBILE, EMAIL, APP_ALIAS, EXTERNAL or ID."""
        return self.request.identifier.type

    @property
    def identifier(self) -> str:
        """The contact's identifier as Engage would get it (a mobile: digits with country code)."""
        return self.request.identifier.value

    @property
    def mobile(self) -> str | None:
        """The mobile number as Engage would get it, or None for another identifier type."""
        return self.identifier if self.identifier_type == "MOBILE" else None

    @property
    def email(self) -> str | None:
        """The e-mail address, or None for another identifier type."""
        return self.identifier if self.identifier_type == "EMAIL" else None

    @property
    def parameters(self) -> dict[str, str]:
        """The placeholder values, by name."""
        return dict(self.request.parameters)


@dataclass
class SendOutbox:
    """What was sent inside one :func:`captured_sends` block, in order."""

    numbers: NumberPolicy = field(default_factory=NumberPolicy)
    sends: list[CapturedSend] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.sends)

    def __iter__(self) -> Iterator[CapturedSend]:
        return iter(self.sends)

    def get(self, key: str) -> CapturedSend | None:
        """The send captured under ``key``, or None."""
        return next((s for s in self.sends if s.key == key), None)

    def clear(self) -> None:
        """Forget every captured send (their keys become free again)."""
        self.sends.clear()

    def final_status(
        self, key: str, state: str = "sent", *, reason: str | None = None
    ) -> dict[str, Any]:
        """The status an ``on_done`` callback would get once the send under ``key`` ended."""
        if state not in FINAL_STATES:
            raise ValueError(f"state must be one of {', '.join(FINAL_STATES)}, got {state!r}")
        status = self.status(key)
        if status["state"] == "unknown":
            raise KeyError(f"no send captured under {key!r}")
        status["state"] = state
        if state == "dead_lettered":
            status["reason"] = reason or "rejected"
        return status

    def status(self, key: str) -> dict[str, Any]:
        """What :func:`tasks.delivery_status` answers inside the block."""
        send = self.get(key)
        if send is None:
            return {"key": key, "state": "unknown"}
        status: dict[str, Any] = {
            "key": key,
            "state": "queued",
            "task_id": send.task_id,
            **send.request.masked(),
            "priority": str(send.priority),
        }
        if send.on_done is not None:
            status["on_done"] = send.on_done
        return status

    def capture(
        self,
        message_id: Any,
        *,
        idempotency_key: str | None,
        priority: Priority | str,
        on_done: str | None,
        **recipient_and_parameters: Any,
    ) -> SendHandle:
        """Validate as :func:`tasks.send_prepared_sms` does, then record instead of enqueuing."""
        lane = parse_priority(priority)
        callback = None if on_done is None else validate_task_name(on_done)
        request = build_send_request(message_id, numbers=self.numbers, **recipient_and_parameters)
        key = (
            f"auto:{uuid()}"
            if idempotency_key is None
            else validate_idempotency_key(idempotency_key)
        )
        with _LOCK:
            earlier = self.get(key)
            if earlier is not None:
                if earlier.request != request:
                    raise IdempotencyConflict(key)
                return SendHandle(key=key, task_id=earlier.task_id, state="queued", created=False)
            send = CapturedSend(key, uuid(), request, lane, callback)
            self.sends.append(send)
        return SendHandle(key=key, task_id=send.task_id, state="queued", created=True)


_LOCK = threading.Lock()
#: The outbox of the innermost active :func:`captured_sends` block, for any thread.
_active: list[SendOutbox] = []


@contextmanager
def captured_sends(
    *, default_region: str | None = None, numbers: NumberPolicy | None = None
) -> Iterator[SendOutbox]:
    """Capture every :func:`tasks.send_prepared_sms` call in the block, from any thread.

    ``default_region`` reads national numbers as the app's ``ENGAGE_DEFAULT_REGION`` would
    (``numbers`` for a whole policy, e.g. other number types).
    """
    policy = numbers or NumberPolicy(default_region=default_region)
    outbox = SendOutbox(numbers=policy)
    with _LOCK:
        _active.append(outbox)
    try:
        yield outbox
    finally:
        with _LOCK:
            _active.remove(outbox)


def active_outbox() -> SendOutbox | None:
    """The outbox sends go to instead of Redis and the broker, or None (the normal case)."""
    with _LOCK:
        return _active[-1] if _active else None
