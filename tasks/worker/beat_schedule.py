"""What celery beat runs, and which run ("slot") a tick belongs to. No Celery app in here.

:mod:`tasks.worker.config` builds ``beat_schedule`` from :func:`housekeeping_entries` and
:func:`schedule_entries`. A run's slot is the schedule's most recent due time: every tick of the
same run (a second beat, a restarted beat, a repeated tick) lands on the same slot, and the slot
goes into each recipient's idempotency key, so the ledger lets each run out once.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from celery.schedules import crontab, schedstate, schedule

from tasks.core.request import SendRequest
from tasks.core.schedule_file import Schedule
from tasks.state.hashing import KeyHasher

#: Housekeeping cadence (seconds).
SWEEP_EVERY = 60.0
DLQ_CLEANUP_EVERY = 3600.0
#: A tick seen a little before its due time (beat's and the worker's clocks differ) still
#: belongs to that run; smaller than the shortest allowed interval.
SLOT_TOLERANCE = timedelta(seconds=5)
#: Furthest back a cron slot is looked for: a 29 February that is also a given weekday.
MAX_CRON_LOOKBACK_DAYS = 366 * 28

DISPATCH_TASK = "engage.dispatch_schedule"
#: Hex digits of the recipient's keyed digest in a run key.
RECIPIENT_DIGEST_LENGTH = 16


def housekeeping_entries() -> dict[str, dict[str, Any]]:
    """Dead-letter cleanup hourly, the stuck-send sweep every minute; a late run is dropped."""
    return {
        "engage-sweep-stuck": {
            "task": "engage.sweep_stuck",
            "schedule": SWEEP_EVERY,
            "options": {"expires": SWEEP_EVERY},
        },
        "engage-dlq-cleanup": {
            "task": "engage.dlq_cleanup",
            "schedule": DLQ_CLEANUP_EVERY,
            "options": {"expires": DLQ_CLEANUP_EVERY},
        },
    }


def schedule_entries(schedules: tuple[Schedule, ...]) -> dict[str, dict[str, Any]]:
    """One beat entry per schedule, carrying the schedule itself: only beat needs the file.

    The recipients travel in the task message as a send's do; Flower, events and logs see the
    schedule's name only.
    """
    return {
        f"engage-schedule:{s.name}": {
            "task": DISPATCH_TASK,
            "schedule": s.cron_spec if s.cron_spec is not None else AlignedInterval(s.every),
            "args": (s.name, dict(s.table)),
            "options": {"argsrepr": repr([s.name]), "kwargsrepr": "{}"},
        }
        for s in schedules
    }


class AlignedInterval(schedule):  # type: ignore[misc]  # Celery ships no type hints
    """Every N seconds at multiples of N since the epoch, whenever beat was started.

    Celery's plain interval counts from the last run and drifts; this one fires on the same
    boundaries that :func:`slot_of` computes, so each run is exactly one slot.
    """

    def is_due(self, last_run_at: datetime) -> tuple[bool, float]:
        """Due when a boundary was crossed since the last run; check again at the next one."""
        now = self.maybe_make_aware(self.now()).astimezone(UTC)
        last = self.maybe_make_aware(last_run_at).astimezone(UTC)
        every = int(self.run_every.total_seconds())
        current = interval_slot(now, every)
        next_check = (current + timedelta(seconds=every) - now).total_seconds()
        state: tuple[bool, float] = schedstate(current > interval_slot(last, every), next_check)
        return state


def slot_of(schedule: Schedule, now: datetime) -> datetime:
    """The run a tick at ``now`` belongs to: the schedule's most recent due time (UTC)."""
    moment = now.astimezone(UTC) + SLOT_TOLERANCE
    if schedule.every is not None:
        return interval_slot(moment, schedule.every)
    assert schedule.cron_spec is not None
    return cron_slot(schedule.cron_spec, moment)


def interval_slot(moment: datetime, every: int) -> datetime:
    """``moment`` floored to a multiple of ``every`` seconds since the epoch."""
    seconds = int(moment.timestamp())
    return datetime.fromtimestamp(seconds - seconds % every, UTC)


def cron_slot(spec: crontab, moment: datetime) -> datetime:
    """The latest minute at or before ``moment`` (UTC) that ``spec`` matches.

    Matching follows Celery's crontab: month, day of month and day of week must all match.
    """
    moment = moment.astimezone(UTC).replace(second=0, microsecond=0)
    day = moment.date()
    for _ in range(MAX_CRON_LOOKBACK_DAYS):
        if (
            day.month in spec.month_of_year
            and day.day in spec.day_of_month
            and day.isoweekday() % 7 in spec.day_of_week
        ):
            today = day == moment.date()
            for hour in sorted(spec.hour, reverse=True):
                if today and hour > moment.hour:
                    continue
                for minute in sorted(spec.minute, reverse=True):
                    if today and hour == moment.hour and minute > moment.minute:
                        continue
                    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)
        day -= timedelta(days=1)
    raise ValueError(f"{spec!r} matched no minute in {MAX_CRON_LOOKBACK_DAYS} days")


def run_key(schedule: Schedule, slot: datetime, request: SendRequest, hasher: KeyHasher) -> str:
    """The idempotency key of one recipient's send in one run of ``schedule``.

    The recipient shows only as a keyed digest: idempotency keys appear in logs and key names.
    """
    # ISO 8601 basic format: no separators, so log masking does not take the date for a number.
    stamp = slot.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    ident = request.identifier
    digest = hasher.digest("beat", f"{ident.type}:{ident.value}", RECIPIENT_DIGEST_LENGTH)
    return f"beat:{schedule.name}:{stamp}:{digest}"
