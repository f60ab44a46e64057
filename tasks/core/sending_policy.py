"""The sending policy: deadlines, quiet hours, per-recipient caps, opt-outs, contact creation.

Engage applies its message limits to campaigns, never to ``sendSingle``, so this package carries
the policy itself. This module holds the settings (read from the environment once, through
:func:`load_policy`) and the per-send deadline's validation; the Redis side is in
:mod:`tasks.state.suppressions` and :mod:`tasks.state.recipient_caps`, the time zones in
:mod:`tasks.core.quiet_hours`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime

from tasks.core.environment import Environment
from tasks.core.errors import ConfigurationError, InvalidSendRequest
from tasks.core.quiet_hours import QuietWindow, parse_window, parse_zone
from tasks.core.send_options import Priority

#: Default deadline per lane: a one-time code or password reset is useless after minutes; a
#: normal send after a day; a campaign has none (it may wait out quiet hours and caps).
DEFAULT_TTLS: dict[Priority, float | None] = {
    Priority.URGENT: 900.0,
    Priority.NORMAL: 86400.0,
    Priority.BULK: None,
}
#: The setting that overrides each lane's default deadline.
TTL_SETTINGS: dict[Priority, str] = {
    Priority.URGENT: "ENGAGE_URGENT_TTL",
    Priority.NORMAL: "ENGAGE_NORMAL_TTL",
    Priority.BULK: "ENGAGE_BULK_TTL",
}
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


@dataclass(frozen=True)
class SendingPolicy:
    """The policy settings, one object in :class:`tasks.core.settings.Settings` (``policy``)."""

    #: Deadline per lane when a send gives none (``ENGAGE_URGENT_TTL``...; None: no deadline).
    ttls: dict[Priority, float | None] = field(default_factory=lambda: dict(DEFAULT_TTLS))
    #: ``ENGAGE_QUIET_HOURS``; None: no quiet hours.
    quiet_hours: QuietWindow | None = None
    quiet_lanes: frozenset[Priority] = DEFAULT_QUIET_LANES
    #: Zone of recipients without one of their own (e-mail, ids) (``ENGAGE_DEFAULT_TIMEZONE``).
    default_timezone: str = "UTC"
    #: ``ENGAGE_RECIPIENT_CAP`` by lane; a lane not named is not capped.
    caps: dict[Priority, RecipientCap] = field(default_factory=dict)
    suppression_lanes: frozenset[Priority] = DEFAULT_SUPPRESSION_LANES
    #: ``ENGAGE_CREATE_CONTACTS``: create an unknown recipient in Engage instead of dead-lettering.
    create_contacts: bool = False

    def quiet_applies(self, lane: Priority) -> bool:
        """Whether sends of ``lane`` wait out quiet hours (urgent never does)."""
        return self.quiet_hours is not None and lane in self.quiet_lanes

    def suppression_applies(self, lane: Priority) -> bool:
        """Whether sends of ``lane`` are checked against the opt-out list."""
        return lane in self.suppression_lanes


def load_policy(env: Environment) -> SendingPolicy:
    """The policy settings from the environment; ConfigurationError names a bad variable."""
    ttls: dict[Priority, float | None] = {}
    for lane, name in TTL_SETTINGS.items():
        raw = env.optional_text(name)
        if raw is None:
            ttls[lane] = DEFAULT_TTLS[lane]
        elif raw.lower() in ("none", "off", "0"):
            ttls[lane] = None
        else:
            ttls[lane] = env.number(name, 0.0, minimum=1)
            if ttls[lane] > MAX_TTL:  # type: ignore[operator]  # just set to a float
                raise ConfigurationError(name, f"must be at most {MAX_TTL:.0f} s (30 days)")
    quiet = env.optional_text("ENGAGE_QUIET_HOURS")
    zone = env.optional_text("ENGAGE_DEFAULT_TIMEZONE")
    return SendingPolicy(
        ttls=ttls,
        quiet_hours=None if quiet is None or quiet.lower() == "off" else parse_window(quiet),
        quiet_lanes=_lanes(env, "ENGAGE_QUIET_LANES", DEFAULT_QUIET_LANES, urgent=False),
        default_timezone="UTC" if zone is None else parse_zone(zone),
        caps=parse_caps(env.optional_text("ENGAGE_RECIPIENT_CAP") or ""),
        suppression_lanes=_lanes(env, "ENGAGE_SUPPRESSION_LANES", DEFAULT_SUPPRESSION_LANES),
        create_contacts=env.choice("ENGAGE_CREATE_CONTACTS", "off", ("off", "on")) == "on",
    )


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
