"""Completion callbacks: the Celery task a send named (``on_done``), published with its status.

When a send reaches a final state, ``sent``, ``dead_lettered`` (again after a replay), or the
sending policy's ``expired``, ``capped``, ``suppressed``, the script that records
it files the key in the outbox (:mod:`tasks.state.callback_outbox`). The task that recorded it then
publishes ``app.send_task(on_done, args=[status])`` to ``ENGAGE_ON_DONE_QUEUE``, ``status`` being
what :func:`tasks.api.delivery_status` returns (masked, with the key for deduplication), and
takes the key out of the outbox. A publish that fails, or a worker that dies before it, leaves the
key there: the housekeeping sweep publishes it after :data:`STALE_AFTER` seconds. At least once,
never before the final state is recorded; a receiver deduplicates by ``status["key"]`` and
``status["state"]``.
"""

from __future__ import annotations

import logging

from tasks.delivery.events import log_event
from tasks.delivery.runtime import Runtime
from tasks.state.enums import FINAL_STATES
from tasks.state.records import shown_status
from tasks.worker.app import app

logger = logging.getLogger("engage.callbacks")

#: Seconds after which the sweep publishes a callback its worker did not (it died, or the
#: broker was away). Much longer than a publish takes, so the sweep rarely doubles one.
STALE_AFTER = 30.0
#: Callbacks published per sweep at most (oldest first); the next sweep takes the rest.
SWEEP_BATCH = 1000


def publish_due(rt: Runtime, key: str) -> bool:
    """Publish the callback of ``key`` if one is due; True when it was published now."""
    due_since = rt.callbacks.due_since(key)
    return due_since is not None and _publish(rt, key, due_since)


def publish_stale(rt: Runtime) -> list[str]:
    """Publish the callbacks left due for over :data:`STALE_AFTER` s; the keys published."""
    return [
        key
        for key, due_since in rt.callbacks.stale(STALE_AFTER, limit=SWEEP_BATCH)
        if _publish(rt, key, due_since)
    ]


def _publish(rt: Runtime, key: str, due_since: float) -> bool:
    record = rt.ledger.record(key)
    task = record.get("on_done")
    if task is None or record.get("state") not in FINAL_STATES:
        # Replayed meanwhile (its next final state files a new callback), or the record is gone.
        rt.callbacks.done(key, due_since)
        return False
    status = shown_status(key, record)
    try:
        app.send_task(task, args=[status], queue=rt.settings.on_done_queue)
    except Exception as err:  # kombu and redis raise many types; the sweep retries every one
        logger.warning(
            "completion callback %s of %s not published (%s: %s); the sweep retries it",
            task,
            key,
            type(err).__name__,
            err,
        )
        return False
    rt.callbacks.done(key, due_since)
    log_event("callback", key=key, task_id=record.get("task_id"), task=task, state=status["state"])
    return True
