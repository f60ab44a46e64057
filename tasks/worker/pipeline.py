"""The Celery tasks: ``engage.resolve_contact`` then ``engage.send_single``, run as a chain."""

from __future__ import annotations

from typing import Any

from celery import Task

from tasks.delivery import steps as delivery
from tasks.delivery.runtime import current_runtime
from tasks.delivery.steps import RetryLater, StepContext
from tasks.errors import DeadLettered
from tasks.request import SendRequest
from tasks.worker.app import MaskedTask, app, engage_settings

_TASK_OPTIONS: dict[str, Any] = {
    "bind": True,
    "base": MaskedTask,
    # Retries are decided by tasks.delivery.retry_policy and counted here without a Celery cap.
    "max_retries": None,
    # Acknowledge only when done, and take the message back if the worker dies mid-task.
    "acks_late": True,
    "reject_on_worker_lost": True,
    # A dead-lettered send is an expected end: Flower shows FAILURE with it, the log no traceback.
    "throws": (DeadLettered,),
}


@app.task(name="engage.resolve_contact", **_TASK_OPTIONS)
def resolve_contact(
    self: Task, request: dict[str, Any], key: str, task_ids: list[str]
) -> dict[str, Any]:
    """Look the contact up in Engage; returns ``{"contact_id": N}`` or ``{"skip": state}``."""
    ctx = _context(self, key, task_ids)
    try:
        found = delivery.resolve(
            current_runtime(engage_settings()), SendRequest.from_dict(request), ctx
        )
    except RetryLater as later:
        raise self.retry(countdown=later.delay, exc=later.error) from None
    except DeadLettered as dead:
        if dead.reason == "already_sent":
            return {"skip": "sent"}
        raise
    if isinstance(found, str):
        return {"skip": found}
    return {"contact_id": found}


@app.task(name="engage.send_single", **_TASK_OPTIONS)
def send_single(
    self: Task, resolved: dict[str, Any], request: dict[str, Any], key: str, task_ids: list[str]
) -> dict[str, Any]:
    """Send the prepared message once; returns ``{"outcome": ...}``."""
    if "skip" in resolved:
        return {"outcome": resolved["skip"], "key": key}
    ctx = _context(self, key, task_ids)
    try:
        outcome = delivery.send(
            current_runtime(engage_settings()),
            SendRequest.from_dict(request),
            int(resolved["contact_id"]),
            ctx,
        )
    except RetryLater as later:
        raise self.retry(countdown=later.delay, exc=later.error) from None
    except DeadLettered as dead:
        if dead.reason == "already_sent":
            return {"outcome": "sent", "key": key}
        raise
    return {"outcome": outcome, "key": key, "contact_id": resolved["contact_id"]}


def _context(task: Task, key: str, task_ids: list[str]) -> StepContext:
    return StepContext(
        key=key, task_id=task.request.id, retries=task.request.retries, task_ids=task_ids
    )
