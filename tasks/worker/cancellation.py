"""Stopping sends that have not started: ``engage-sms cancel`` by key, by lane or by schedule.

A cancelled send reaches the final state ``cancelled`` in one script (``lua/cancel.lua``), which
files its completion callback in the same step; the callback is published here at once (the
sweep publishes it if this process dies first). Whatever copy of its task is still in a queue,
or is published again later (the sweep, a ``celery purge`` followed by a republish, a redelivery),
finds the record final and sends nothing. A send already being sent (its lease is held) cannot
be stopped: it is reported ``sending``.
"""

from __future__ import annotations

from collections import Counter

from tasks.core.send_options import Priority
from tasks.delivery.events import log_event
from tasks.delivery.runtime import Runtime
from tasks.worker import completion_callbacks

#: What :func:`cancel` reports for a send it stopped.
CANCELLED_NOW = "cancelled_now"


def select(rt: Runtime, *, lane: Priority | None = None, schedule: str | None = None) -> list[str]:
    """The unfinished sends of a lane and/or of a schedule's runs (``beat:<name>:...`` keys)."""
    keys = rt.ledger.unfinished()
    if schedule is not None:
        keys = [k for k in keys if k.startswith(f"beat:{schedule}:")]
    if lane is not None:
        lanes = rt.ledger.lanes_of(keys)
        keys = [k for k, found in zip(keys, lanes, strict=True) if found == lane.value]
    return keys


def cancel(rt: Runtime, keys: list[str]) -> dict[str, str]:
    """Cancel each key: ``cancelled_now``, or the state that kept it (``sending``, ``sent``...)."""
    outcomes: dict[str, str] = {}
    for key in keys:
        outcome = rt.ledger.cancel(key)
        outcomes[key] = outcome
        if outcome == CANCELLED_NOW:
            log_event("cancelled", key=key)
            completion_callbacks.publish_due(rt, key)
    return outcomes


def summary(outcomes: dict[str, str]) -> dict[str, int]:
    """How many keys ended each way."""
    return dict(Counter(outcomes.values()))
