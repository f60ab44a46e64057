"""Publishing a send: claim its key in the ledger, then publish the chain in one message.

Used by the public API, the beat schedules and the housekeeping sweep; nothing is half-done: a
claim whose publish failed is released again.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from celery import uuid

from tasks.delivery.events import log_event
from tasks.delivery.runtime import Runtime
from tasks.errors import IdempotencyConflict
from tasks.request import SendRequest
from tasks.worker.pipeline import resolve_contact, send_single


@dataclass(frozen=True)
class SendHandle:
    """What the caller gets back: the key to ask about, the task id to find in Flower."""

    key: str
    task_id: str
    state: str
    #: False when the key was known already: nothing new was enqueued.
    created: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON form (the CLI prints it)."""
        return asdict(self)


def enqueue(rt: Runtime, request: SendRequest, key: str) -> SendHandle:
    """Claim ``key`` for ``request`` and publish the chain if the claim is new."""
    task_ids = [uuid(), uuid()]
    claim = rt.ledger.claim(key, request, task_ids)
    if claim.outcome == "conflict":
        raise IdempotencyConflict(key)
    if claim.outcome == "created":
        try:
            publish(request, key, task_ids)
        except BaseException:
            # Nothing half-done: without a published task the claim must not block a retry.
            rt.ledger.release_unpublished(key, task_ids[-1])
            raise
        log_event(
            "enqueued",
            key=key,
            task_id=task_ids[-1],
            recipient=request.identifier.masked(),
            message_id=request.message_id,
        )
    else:
        log_event("duplicate", key=key, task_id=claim.task_id, state=claim.state)
    return SendHandle(
        key=key, task_id=claim.task_id, state=claim.state, created=claim.outcome == "created"
    )


def publish(request: SendRequest, key: str, task_ids: list[str]) -> None:
    """Publish the chain ``resolve_contact -> send_single`` with the given task ids.

    One message: the first task's, carrying the rest of the chain in Celery's ``chain`` option,
    exactly what ``celery.chain(...).apply_async()`` sends for two tasks; the worker publishes
    ``send_single`` when ``resolve_contact`` returns. Built directly, it skips the canvas's
    cloning and freezing: 0.16 ms less per enqueue (docs/benchmarks.md).
    """
    data = request.to_dict()
    then = send_single.s(data, key, task_ids).set(task_id=task_ids[1])
    resolve_contact.apply_async((data, key, task_ids), task_id=task_ids[0], chain=[then])
