"""The schedule file (``ENGAGE_SCHEDULE_FILE``): periodic prepared sends, validated in full at load.

A TOML file of ``[[schedule]]`` tables::

    [[schedule]]
    name = "daily-reminder"
    cron = "0 9 * * *"            # minute hour day-of-month month day-of-week, UTC
    # every = 3600                # or: every N seconds (at multiples of N since the epoch)
    message_id = 23541
    parameters = { firstName = "Ann" }
    recipients = [{ mobile = "+48505606707" }, { email = "a@example.com" },
                  { recipient_id = 33457 }]
    priority = "bulk"             # the lane: urgent, normal or bulk (the default)
    expires_in = 3600             # deadline in seconds (default: the lane's, ENGAGE_BULK_TTL)

Every recipient is validated like an API call (:func:`tasks.core.request.build_send_request`);
any error names the schedule and the field, as a ConfigurationError of ``ENGAGE_SCHEDULE_FILE``.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from celery.schedules import ParseException, crontab

from tasks.core.errors import ConfigurationError, FieldError, InvalidSendRequest
from tasks.core.request import SendRequest, build_send_request
from tasks.core.send_options import DEFAULT_SCHEDULE_PRIORITY, Priority, parse_priority

SETTING = "ENGAGE_SCHEDULE_FILE"
#: Names go into idempotency keys: short, and without the key's ``:`` separator.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
#: Shortest interval: a prepared SMS more often than every minute is a mistake, not a schedule.
MIN_EVERY_SECONDS = 60
RECIPIENT_FIELDS = ("mobile", "email", "app_alias", "external_id", "recipient_id")
SCHEDULE_FIELDS = (
    "name",
    "cron",
    "every",
    "message_id",
    "parameters",
    "recipients",
    "priority",
    "expires_in",
)


@dataclass(frozen=True)
class Schedule:
    """One periodic send: when (``cron`` or ``every`` seconds), what, and to whom."""

    name: str
    #: The cron expression as written, and as parsed by Celery (both None with ``every``).
    cron: str | None
    cron_spec: crontab | None
    every: int | None
    requests: tuple[SendRequest, ...]
    #: The lane of every send of a run; bulk unless the file says otherwise.
    priority: Priority = DEFAULT_SCHEDULE_PRIORITY
    #: Each run's deadline in seconds (None: the lane's default).
    expires_in: float | None = None
    #: The ``[[schedule]]`` table as written: beat publishes it with each run, so only beat
    #: needs the file (the worker validates it again with :func:`schedule_from_table`).
    table: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


def load_schedules(path: str | None) -> tuple[Schedule, ...]:
    """Read and validate the file; no path, no schedules."""
    if path is None:
        return ()
    try:
        with open(path, "rb") as file:
            data = tomllib.load(file)
    except OSError as err:
        raise ConfigurationError(SETTING, f"{path}: cannot read: {err.strerror}") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigurationError(SETTING, f"{path}: not valid TOML: {err}") from None
    return parse_schedules(data, source=path)


def parse_schedules(
    data: Mapping[str, Any], *, source: str = "schedule file"
) -> tuple[Schedule, ...]:
    """Validate parsed TOML; a ConfigurationError names the schedule and the field at fault."""
    unknown = sorted(set(data) - {"schedule"})
    if unknown:
        raise ConfigurationError(SETTING, f"{source}: unknown top-level key {unknown[0]!r}")
    tables = data.get("schedule", [])
    if not isinstance(tables, list):
        raise ConfigurationError(SETTING, f"{source}: 'schedule' must be [[schedule]] tables")
    schedules: list[Schedule] = []
    for index, table in enumerate(tables):
        where = f"{source}: schedule[{index}]"
        if isinstance(table, dict) and isinstance(table.get("name"), str):
            where = f"{source}: schedule {table['name']!r}"
        try:
            schedule = _schedule(table)
        except FieldError as err:
            raise ConfigurationError(SETTING, f"{where}: {err.field}: {err.problem}") from None
        if any(s.name == schedule.name for s in schedules):
            raise ConfigurationError(SETTING, f"{where}: name: used by an earlier schedule")
        schedules.append(schedule)
    return tuple(schedules)


def schedule_from_table(table: Mapping[str, Any], *, source: str) -> Schedule:
    """One schedule from its table as beat published it, validated as the file was."""
    (schedule,) = parse_schedules({"schedule": [dict(table)]}, source=source)
    return schedule


def _schedule(table: object) -> Schedule:
    if not isinstance(table, dict):
        raise FieldError("schedule", "must be a table")
    unknown = sorted(set(table) - set(SCHEDULE_FIELDS))
    if unknown:
        raise FieldError(unknown[0], f"unknown field (expected {', '.join(SCHEDULE_FIELDS)})")
    name = table.get("name")
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise FieldError("name", "must be 1 to 64 letters, digits, '_', '.', '-'")
    cron, every = _timing(table)
    try:
        priority = parse_priority(table.get("priority", DEFAULT_SCHEDULE_PRIORITY))
    except InvalidSendRequest as err:
        raise FieldError("priority", err.problem) from None
    expires_in = table.get("expires_in")
    if expires_in is not None and (
        isinstance(expires_in, bool) or not isinstance(expires_in, int | float) or expires_in <= 0
    ):
        raise FieldError("expires_in", "must be a number of seconds above 0")
    return Schedule(
        name=name,
        cron=None if cron is None else table["cron"],
        cron_spec=cron,
        every=every,
        requests=_requests(table),
        priority=priority,
        expires_in=None if expires_in is None else float(expires_in),
        table=dict(table),
    )


def _timing(table: dict[str, Any]) -> tuple[crontab | None, int | None]:
    if ("cron" in table) == ("every" in table):
        raise FieldError("cron", "give exactly one of cron and every")
    if "every" in table:
        every = table["every"]
        if isinstance(every, bool) or not isinstance(every, int) or every < MIN_EVERY_SECONDS:
            raise FieldError("every", f"must be a whole number of seconds >= {MIN_EVERY_SECONDS}")
        return None, every
    text = table["cron"]
    if not isinstance(text, str) or len(text.split()) != 5:
        raise FieldError("cron", f"must be 5 fields 'minute hour day month weekday', got {text!r}")
    minute, hour, day_of_month, month_of_year, day_of_week = text.split()
    try:
        spec = crontab(
            minute=minute,
            hour=hour,
            day_of_week=day_of_week,
            day_of_month=day_of_month,
            month_of_year=month_of_year,
        )
    except (ValueError, ParseException) as err:
        raise FieldError("cron", f"{text!r}: {err}") from None
    return spec, None


def _requests(table: dict[str, Any]) -> tuple[SendRequest, ...]:
    parameters = table.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise FieldError("parameters", 'must be a table of name = "value"')
    recipients = table.get("recipients")
    if not isinstance(recipients, list) or not recipients:
        raise FieldError("recipients", "must be a non-empty list of tables like { mobile = ... }")
    requests: list[SendRequest] = []
    for index, recipient in enumerate(recipients):
        field = f"recipients[{index}]"
        if not isinstance(recipient, dict):
            raise FieldError(field, 'must be a table like { mobile = "+48..." }')
        unknown = sorted(set(recipient) - set(RECIPIENT_FIELDS))
        if unknown:
            raise FieldError(
                f"{field}.{unknown[0]}",
                f"unknown field (expected one of {', '.join(RECIPIENT_FIELDS)})",
            )
        try:
            request = build_send_request(
                table.get("message_id"), parameters=parameters, **recipient
            )
        except InvalidSendRequest as err:
            at = err.field if err.field in ("message_id", "parameters") else f"{field}.{err.field}"
            raise FieldError(at, err.problem) from None
        for earlier, other in enumerate(requests):
            if other.identifier == request.identifier:
                raise FieldError(field, f"the same recipient as recipients[{earlier}]")
        requests.append(request)
    return tuple(requests)
