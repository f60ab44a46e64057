"""Quiet hours: a daily window, in the recipient's own time zones, in which sends wait.

A mobile number's zones come from ``phonenumbers``' time-zone data (libphonenumber's
``geocoding`` tables): one zone for most numbers, several for a country or range that spans them
(a US number of an unknown area code, Australian and Russian mobiles). A number is quiet while
*any* of its zones is in the window: it cannot be known which one the person is in, and a
campaign SMS at 3 a.m. is the failure to avoid. Other identifiers (e-mail, app alias, external id,
contact id) carry no zone and use ``ENGAGE_DEFAULT_TIMEZONE``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as number_zones

from tasks.core.errors import ConfigurationError

_CLOCK = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?")
#: How far ahead the end of a window is looked for: a window is shorter than a day, so two days
#: hold the end of every zone's current window and the next one.
_HORIZON_DAYS = 3


@dataclass(frozen=True)
class QuietWindow:
    """A daily window of local time, ``start`` to ``end``; it wraps midnight when end < start."""

    start: time
    end: time

    def contains(self, moment: time) -> bool:
        """Whether a local time of day falls in the window (start included, end not)."""
        if self.start < self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end

    def __str__(self) -> str:
        return f"{self.start.isoformat()}-{self.end.isoformat()}"


def parse_window(value: str, *, setting: str = "ENGAGE_QUIET_HOURS") -> QuietWindow:
    """``21:00-08:00`` (or with seconds, ``21:00:00-08:00:30``) as a window."""
    start_text, dash, end_text = value.strip().partition("-")
    start, end = _clock(start_text), _clock(end_text)
    if not dash or start is None or end is None:
        raise ConfigurationError(
            setting, f"must be HH:MM-HH:MM in 24-hour local time, e.g. 21:00-08:00; got {value!r}"
        )
    if start == end:
        raise ConfigurationError(setting, f"start and end are the same time ({value!r})")
    return QuietWindow(start, end)


def _clock(text: str) -> time | None:
    match = _CLOCK.fullmatch(text.strip())
    if match is None:
        return None
    return time(int(match[1]), int(match[2]), int(match[3] or 0))


def parse_zone(value: str, *, setting: str = "ENGAGE_DEFAULT_TIMEZONE") -> str:
    """An IANA zone name the system knows (``Europe/Warsaw``, ``UTC``)."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError(
            setting, f"must be an IANA time zone such as Europe/Warsaw, got {value!r}"
        ) from None
    return value


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def recipient_zones(id_type: str, value: str, default_zone: str) -> tuple[str, ...]:
    """The time zones a recipient may be in: a mobile number's, else ``default_zone``."""
    if id_type != "MOBILE":
        return (default_zone,)
    try:
        number = phonenumbers.parse("+" + value)
    except phonenumbers.NumberParseException:
        return (default_zone,)
    zones = tuple(
        z for z in number_zones.time_zones_for_number(number) if z != number_zones.UNKNOWN_TIMEZONE
    )
    known = tuple(z for z in zones if _known(z))
    return known or (default_zone,)


def _known(name: str) -> bool:
    try:
        _zone(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def quiet_in(window: QuietWindow, zones: tuple[str, ...], moment: datetime) -> bool:
    """Whether any of ``zones`` is in the window at ``moment`` (an aware datetime)."""
    return any(window.contains(moment.astimezone(_zone(z)).time()) for z in zones)


def quiet_until(window: QuietWindow, zones: tuple[str, ...], now: datetime) -> datetime | None:
    """When a send to a recipient in ``zones`` may go: None if now, else the earliest moment
    none of the zones is quiet (UTC).

    The candidates are the window's end in each zone, today and the next days; the first at
    which no zone is quiet wins. Zones whose windows together cover the whole day have no such
    moment: then the end that comes last within a day is taken, so the send waits, but not
    forever.
    """
    if not quiet_in(window, zones, now):
        return None
    candidates: list[datetime] = []
    for name in zones:
        local_today = now.astimezone(_zone(name)).date()
        for days in range(-1, _HORIZON_DAYS):
            local = datetime.combine(local_today + timedelta(days=days), window.end, _zone(name))
            moment = local.astimezone(UTC)
            if moment > now:
                candidates.append(moment)
    candidates.sort()
    for moment in candidates:
        if not quiet_in(window, zones, moment):
            return moment
    within_a_day = [m for m in candidates if m <= now + timedelta(days=1)]
    return max(within_a_day) if within_a_day else candidates[0]
