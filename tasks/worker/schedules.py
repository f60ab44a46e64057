"""``engage.dispatch_schedule``: one run of a schedule from ``ENGAGE_SCHEDULE_FILE``, sent once.

Beat publishes the schedule as its file has it (only beat needs ``ENGAGE_SCHEDULE_FILE``), and
the moment of its tick in a message header (:data:`TICK_HEADER`, stamped by :func:`stamp_tick`
as beat publishes); the worker validates the schedule again, works out the run's slot from the
tick, never from its own clock when the message comes out of a backlog, and enqueues one send
per recipient under a key made of name, slot and recipient, so repeated ticks never double-send
and a late tick still sends its own run.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from celery import Task
from celery.signals import before_task_publish

from tasks.core.errors import ConfigurationError, IdempotencyConflict
from tasks.core.schedule_file import SETTING, Schedule, schedule_from_table
from tasks.core.sending_policy import resolve_deadline
from tasks.delivery.runtime import Runtime, current_runtime
from tasks.worker import publish
from tasks.worker.app import MaskedTask, app, engage_settings
from tasks.worker.beat_schedule import DISPATCH_TASK, run_key, slot_of

logger = logging.getLogger("engage.schedules")

#: The message header holding when beat published the tick (ISO 8601, UTC).
TICK_HEADER = "engage_tick"


def stamp_tick(sender: object = None, headers: dict[str, Any] | None = None, **_: Any) -> None:
    """``before_task_publish``: a dispatch message carries the moment it was published."""
    if sender == DISPATCH_TASK and headers is not None:
        headers.setdefault(TICK_HEADER, datetime.now(UTC).isoformat())


# Connected by call, not decorator: Celery's decorators are untyped. Beat imports this module.
before_task_publish.connect(stamp_tick, weak=False)


@app.task(name=DISPATCH_TASK, base=MaskedTask, acks_late=True, bind=True)
def dispatch_schedule(
    self: Task, name: str, table: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Enqueue the run of schedule ``name`` its tick belongs to; repeated ticks enqueue nothing.

    ``table`` is the schedule as beat read it from its file; without it (a beat older than
    0.2.0 publishes the name alone) the schedule is looked up in this worker's own file.
    """
    if table is not None:
        schedule = schedule_from_table(table, source="published by beat")
    else:
        schedule = _from_this_workers_file(name)
    return dispatch(current_runtime(engage_settings()), schedule, tick_of(self.request))


def tick_of(request: Any) -> datetime:
    """When beat published this dispatch; now for a message without the header (older beats)."""
    stamped = request.get(TICK_HEADER) if request is not None else None
    if isinstance(stamped, str):
        try:
            return datetime.fromisoformat(stamped).astimezone(UTC)
        except ValueError:
            logger.warning("dispatch with an unreadable tick %r: using the worker's clock", stamped)
    return datetime.now(UTC)


def _from_this_workers_file(name: str) -> Schedule:
    schedule = next((s for s in configured_schedules() if s.name == name), None)
    if schedule is None:
        raise ConfigurationError(
            SETTING, f"this worker's file has no schedule {name!r} (published by an old beat)"
        )
    return schedule


def dispatch(rt: Runtime, schedule: Schedule, now: datetime) -> dict[str, Any]:
    """Enqueue each recipient of the run ``now`` belongs to; returns what happened, counted."""
    slot = slot_of(schedule, now)
    counts: Counter[str] = Counter()
    for request in schedule.requests:
        key = run_key(schedule, slot, request, rt.hasher)
        try:
            deadline = resolve_deadline(
                schedule.expires_in, None, schedule.priority, rt.settings.policy, now=0
            )
            handle = publish.enqueue(
                rt, request, key, priority=schedule.priority, deadline=deadline
            )
        except IdempotencyConflict:
            # The file changed within this run: the run went out already, with the old content.
            logger.warning("schedule %s: %s already sent with other content", schedule.name, key)
            counts["conflict"] += 1
            continue
        counts["enqueued" if handle.created else "duplicate"] += 1
    result = {"schedule": schedule.name, "slot": slot.isoformat(), **counts}
    logger.info("schedule run %s", result)
    return result


def configured_schedules() -> tuple[Schedule, ...]:
    """The schedules :mod:`tasks.worker.config` loaded from ``ENGAGE_SCHEDULE_FILE``."""
    schedules = app.conf.get("engage_schedules") or ()
    return tuple(schedules)
