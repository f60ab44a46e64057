"""The sending policy: deadlines, quiet hours, per-recipient caps, opt-outs, contact creation.

Engage applies its message limits to campaigns, never to ``sendSingle``, so this package carries
the policy itself. This module declares its settings (:data:`POLICY_SETTINGS`, part of
:data:`tasks.core.settings.SETTINGS`, read by its one loader) and validates a send's deadline; the
Redis side is in :mod:`tasks.state.suppressions` and :mod:`tasks.state.recipient_caps`, the time
zones in :mod:`tasks.core.quiet_hours`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from tasks.core.environment import Environment, Setting
from tasks.core.errors import ConfigurationError, InvalidSendRequest
from tasks.core.quiet_hours import QuietWindow, parse_window, parse_zone
from tasks.core.send_options import Priority

#: The longest deadline a send may ask for (beyond it the ledger record itself would be gone).
MAX_TTL = 30 * 86400.0
#: Lanes quiet hours apply to unless ``ENGAGE_QUIET_LANES`` says otherwise.
DEFAULT_QUIET_LANES = frozenset({Priority.BULK})
#: Lanes the opt-out list applies to unless ``ENGAGE_SUPPRESSION_LANES`` says otherwise.
DEFAULT_SUPPRESSION_LANES = frozenset(Priority)

_CAP = re.compile(r"(\d+)\s*/\s*(\d+(?:\.\d+)?)\s*([smhd]?)")
_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


@dataclass(frozen=True)
class RecipientCap:
    """At most ``limit`` sends of one lane to one recipient within ``window`` seconds."""

    limit: int
    window: float

    def __str__(self) -> str:
        return f"{self.limit}/{self.window:g}s"


def _read_ttl(env: Environment, setting: Setting[Any]) -> float | None:
    """A lane's deadline in seconds; ``none``, ``off`` or ``0``: no deadline."""
    raw = env.optional_text(setting.name)
    if raw is None:
        return cast("float | None", setting.default)
    if raw.lower() in ("none", "off", "0"):
        return None
    value = env.number(setting.name, 0.0, minimum=setting.minimum)
    if value > MAX_TTL:
        raise ConfigurationError(setting.name, f"must be at most {MAX_TTL:.0f} s (30 days)")
    return value


def _read_window(env: Environment, setting: Setting[Any]) -> QuietWindow | None:
    raw = env.optional_text(setting.name)
    if raw is None or raw.lower() == "off":
        return None
    return parse_window(raw, setting=setting.name)


def _read_zone(env: Environment, setting: Setting[Any]) -> str:
    raw = env.optional_text(setting.name)
    return str(setting.default) if raw is None else parse_zone(raw, setting=setting.name)


def _read_caps(env: Environment, setting: Setting[Any]) -> dict[Priority, RecipientCap]:
    return parse_caps(env.optional_text(setting.name) or "", setting=setting.name)


def _read_quiet_lanes(env: Environment, setting: Setting[Any]) -> frozenset[Priority]:
    return _lanes(env, setting.name, cast("frozenset[Priority]", setting.default), urgent=False)


def _read_lanes(env: Environment, setting: Setting[Any]) -> frozenset[Priority]:
    return _lanes(env, setting.name, cast("frozenset[Priority]", setting.default))


def _lanes(
    env: Environment, name: str, default: frozenset[Priority], *, urgent: bool = True
) -> frozenset[Priority]:
    raw = env.optional_text(name)
    if raw is None:
        return default
    if raw.lower() == "none":
        return frozenset()
    lanes: set[Priority] = set()
    for part in raw.split(","):
        word = part.strip().lower()
        if word not in {p.value for p in Priority}:
            raise ConfigurationError(
                name, f"must be a comma-separated list of urgent, normal, bulk; got {part!r}"
            )
        lanes.add(Priority(word))
    if not urgent and Priority.URGENT in lanes:
        raise ConfigurationError(name, "urgent sends never wait for quiet hours")
    return frozenset(lanes)


def parse_caps(
    value: str, *, setting: str = "ENGAGE_RECIPIENT_CAP"
) -> dict[Priority, RecipientCap]:
    """``bulk=2/24h,normal=10/24h`` as caps by lane (units s, m, h, d; none: seconds)."""
    caps: dict[Priority, RecipientCap] = {}
    for part in value.split(","):
        if not part.strip():
            continue
        lane_text, eq, rule = part.partition("=")
        lane = lane_text.strip().lower()
        match = _CAP.fullmatch(rule.strip())
        if not eq or lane not in {p.value for p in Priority} or match is None:
            raise ConfigurationError(
                setting, f"expected LANE=COUNT/PERIOD such as bulk=2/24h, got {part.strip()!r}"
            )
        limit, window = int(match[1]), float(match[2]) * _UNITS[match[3]]
        if limit < 1 or window <= 0:
            raise ConfigurationError(setting, f"{part.strip()!r}: count and period must be > 0")
        if Priority(lane) in caps:
            raise ConfigurationError(setting, f"lane {lane} is named twice")
        caps[Priority(lane)] = RecipientCap(limit, window)
    return caps


#: The policy's variables, part of :data:`tasks.core.settings.SETTINGS` (the README's table) and
#: read by its one loader into :attr:`tasks.core.settings.Settings.policy`; :class:`SendingPolicy`'s
#: defaults are theirs. Deadlines: a one-time code or password reset is useless after minutes; a
#: normal send after a day; a campaign has none (it may wait out quiet hours and caps).
# fmt: off
POLICY_SETTINGS: tuple[Setting[Any], ...] = (
    Setting("ENGAGE_URGENT_TTL", float, 900.0, field="policy.urgent_ttl", minimum=1, unit=" s",
            reader=_read_ttl, doc="Deadline of an urgent send that gives none (at most 30 days; "
                                  "`none`, `off` or `0`: no deadline)"),
    Setting("ENGAGE_NORMAL_TTL", float, 86400.0, field="policy.normal_ttl", minimum=1, unit=" s",
            reader=_read_ttl, doc="Deadline of a normal send that gives none (likewise)"),
    Setting("ENGAGE_BULK_TTL", float, None, field="policy.bulk_ttl", minimum=1,
            shown="`none`", reader=_read_ttl,
            doc="Deadline of a bulk send that gives none (likewise)"),
    Setting("ENGAGE_QUIET_HOURS", QuietWindow, None, field="policy.quiet_hours",
            shown="`off`", reader=_read_window,
            doc="Daily window of recipients' local time in which sends wait, `HH:MM[:SS]-HH:MM"
                "[:SS]` (may wrap midnight), e.g. `21:00-08:00` (see Sending policy)"),
    Setting("ENGAGE_QUIET_LANES", frozenset, DEFAULT_QUIET_LANES, field="policy.quiet_lanes",
            shown="`bulk`", reader=_read_quiet_lanes,
            doc="Lanes that wait out quiet hours, comma-separated, or `none` (`urgent` is "
                "refused)"),
    Setting("ENGAGE_DEFAULT_TIMEZONE", str, "UTC", field="policy.default_timezone",
            reader=_read_zone,
            doc="IANA zone of recipients without one of their own (e-mail, app alias, ids)"),
    Setting("ENGAGE_RECIPIENT_CAP", dict, {}, field="policy.caps", shown="unset (no caps)",
            reader=_read_caps,
            doc="Sends per recipient and lane, `LANE=COUNT/PERIOD,...` (units `s m h d`), e.g. "
                "`bulk=2/24h,normal=10/24h`; a lane not named is not capped"),
    Setting("ENGAGE_SUPPRESSION_LANES", frozenset, DEFAULT_SUPPRESSION_LANES,
            field="policy.suppression_lanes", shown="`urgent,normal,bulk`", reader=_read_lanes,
            doc="Lanes checked against the opt-out list, comma-separated, or `none`"),
    Setting("ENGAGE_CREATE_CONTACTS", bool, False, field="policy.create_contacts",
            doc="`on`: a recipient Engage does not know is created, then sent to, unless the "
                "send says otherwise (`create_contact`)"),
)
# fmt: on
_DECLARED = {setting.field.partition(".")[2]: setting for setting in POLICY_SETTINGS}


def _default(name: str) -> Any:
    return _DECLARED[name].value


@dataclass(frozen=True)
class SendingPolicy:
    """The policy settings, one object in :class:`tasks.core.settings.Settings` (``policy``)."""

    #: Deadline of an urgent send that gives none (``ENGAGE_URGENT_TTL``; None: no deadline).
    urgent_ttl: float | None = _default("urgent_ttl")
    #: ``ENGAGE_NORMAL_TTL``, likewise.
    normal_ttl: float | None = _default("normal_ttl")
    #: ``ENGAGE_BULK_TTL``, likewise.
    bulk_ttl: float | None = _default("bulk_ttl")
    #: ``ENGAGE_QUIET_HOURS``; None: no quiet hours.
    quiet_hours: QuietWindow | None = None
    quiet_lanes: frozenset[Priority] = _default("quiet_lanes")
    #: Zone of recipients without one of their own (e-mail, ids) (``ENGAGE_DEFAULT_TIMEZONE``).
    default_timezone: str = _default("default_timezone")
    #: ``ENGAGE_RECIPIENT_CAP`` by lane; a lane not named is not capped.
    caps: dict[Priority, RecipientCap] = field(default_factory=lambda: dict(_default("caps")))
    suppression_lanes: frozenset[Priority] = _default("suppression_lanes")
    #: ``ENGAGE_CREATE_CONTACTS``: create an unknown recipient in Engage instead of dead-lettering.
    create_contacts: bool = _default("create_contacts")

    @property
    def ttls(self) -> dict[Priority, float | None]:
        """Deadline per lane when a send gives none (None: no deadline)."""
        return {
            Priority.URGENT: self.urgent_ttl,
            Priority.NORMAL: self.normal_ttl,
            Priority.BULK: self.bulk_ttl,
        }

    def quiet_applies(self, lane: Priority) -> bool:
        """Whether sends of ``lane`` wait out quiet hours (urgent never does)."""
        return self.quiet_hours is not None and lane in self.quiet_lanes

    def suppression_applies(self, lane: Priority) -> bool:
        """Whether sends of ``lane`` are checked against the opt-out list."""
        return lane in self.suppression_lanes


#: Default deadline per lane (the declared ``ENGAGE_*_TTL`` defaults).
DEFAULT_TTLS: dict[Priority, float | None] = SendingPolicy().ttls


@dataclass(frozen=True)
class Deadline:
    """When a send stops being worth sending: relative to enqueue, or an absolute moment."""

    #: Seconds from enqueue (counted on the Redis clock when the key is claimed).
    expires_in: float | None = None
    #: Epoch seconds.
    send_by: float | None = None


def resolve_deadline(
    expires_in: object, send_by: object, lane: Priority, policy: SendingPolicy, *, now: float
) -> Deadline:
    """The deadline a send asks for, else its lane's default; InvalidSendRequest if malformed.

    ``expires_in``: seconds, a positive number. ``send_by``: an aware datetime in the future.
    Not both. ``now`` is this process's clock, used only to refuse a ``send_by`` in the past.
    """
    if expires_in is not None and send_by is not None:
        raise InvalidSendRequest("expires_in", "give expires_in or send_by, not both")
    if expires_in is not None:
        if isinstance(expires_in, bool) or not isinstance(expires_in, int | float):
            raise InvalidSendRequest("expires_in", "must be a number of seconds")
        if not math.isfinite(expires_in) or expires_in <= 0:
            raise InvalidSendRequest("expires_in", f"must be more than 0 seconds, got {expires_in}")
        if expires_in > MAX_TTL:
            raise InvalidSendRequest("expires_in", f"must be at most {MAX_TTL:.0f} s (30 days)")
        return Deadline(expires_in=float(expires_in))
    if send_by is not None:
        if not isinstance(send_by, datetime):
            raise InvalidSendRequest("send_by", "must be a datetime with a time zone")
        if send_by.tzinfo is None or send_by.utcoffset() is None:
            raise InvalidSendRequest(
                "send_by", "must carry a time zone (a naive datetime is ambiguous)"
            )
        moment = send_by.timestamp()
        if moment <= now:
            raise InvalidSendRequest("send_by", "is in the past")
        if moment - now > MAX_TTL:
            raise InvalidSendRequest("send_by", "is more than 30 days away")
        return Deadline(send_by=moment)
    default = policy.ttls.get(lane)
    return Deadline(expires_in=default)
