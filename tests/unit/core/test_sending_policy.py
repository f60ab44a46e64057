"""The sending policy's settings and a send's deadline: clear errors for bad values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tasks.core.errors import ConfigurationError, InvalidSendRequest
from tasks.core.send_options import Priority
from tasks.core.sending_policy import (
    DEFAULT_TTLS,
    RecipientCap,
    SendingPolicy,
    parse_caps,
    resolve_deadline,
)
from tasks.core.settings import load_settings

NOW = 1_800_000_000.0


def test_defaults_quiet_nothing_cap_nothing_and_dead_letter_unknown_recipients() -> None:
    """Without settings: no quiet hours, no caps, every lane checked for opt-outs, no create."""
    policy = load_settings({}).policy
    assert policy.quiet_hours is None
    assert policy.caps == {}
    assert policy.suppression_lanes == frozenset(Priority)
    assert policy.create_contacts is False
    assert policy.ttls == DEFAULT_TTLS
    assert policy.ttls[Priority.BULK] is None


def test_settings_are_read_from_the_environment() -> None:
    """Each variable reaches the policy object."""
    policy = load_settings(
        {
            "ENGAGE_QUIET_HOURS": "21:00-08:00",
            "ENGAGE_QUIET_LANES": "bulk,normal",
            "ENGAGE_DEFAULT_TIMEZONE": "Europe/Warsaw",
            "ENGAGE_RECIPIENT_CAP": "bulk=2/24h,normal=10/1d",
            "ENGAGE_SUPPRESSION_LANES": "bulk,normal",
            "ENGAGE_CREATE_CONTACTS": "on",
            "ENGAGE_URGENT_TTL": "60",
            "ENGAGE_NORMAL_TTL": "none",
        }
    ).policy
    assert str(policy.quiet_hours) == "21:00:00-08:00:00"
    assert policy.quiet_applies(Priority.NORMAL)
    assert not policy.quiet_applies(Priority.URGENT)
    assert policy.default_timezone == "Europe/Warsaw"
    assert policy.caps == {
        Priority.BULK: RecipientCap(2, 86400.0),
        Priority.NORMAL: RecipientCap(10, 86400.0),
    }
    assert not policy.suppression_applies(Priority.URGENT)
    assert policy.create_contacts
    assert policy.ttls[Priority.URGENT] == 60.0
    assert policy.ttls[Priority.NORMAL] is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ENGAGE_QUIET_LANES", "urgent"),
        ("ENGAGE_QUIET_LANES", "slow"),
        ("ENGAGE_RECIPIENT_CAP", "bulk=2"),
        ("ENGAGE_RECIPIENT_CAP", "bulk=0/24h"),
        ("ENGAGE_RECIPIENT_CAP", "fast=2/24h"),
        ("ENGAGE_RECIPIENT_CAP", "bulk=2/1h,bulk=3/1h"),
        ("ENGAGE_URGENT_TTL", "-5"),
        ("ENGAGE_CREATE_CONTACTS", "maybe"),
        ("ENGAGE_SUPPRESSION_LANES", "all"),
    ],
)
def test_a_bad_policy_setting_is_named(name: str, value: str) -> None:
    """A malformed value stops the configuration with the variable's name."""
    with pytest.raises(ConfigurationError, match=name):
        load_settings({name: value})


def test_caps_read_units() -> None:
    """s, m, h, d and bare seconds."""
    caps = parse_caps("urgent=1/30,normal=2/5m,bulk=3/2d")
    assert caps[Priority.URGENT] == RecipientCap(1, 30.0)
    assert caps[Priority.NORMAL] == RecipientCap(2, 300.0)
    assert caps[Priority.BULK] == RecipientCap(3, 172800.0)


def test_a_deadline_is_the_send_s_or_its_lane_s() -> None:
    """expires_in wins over the lane default; bulk has none by default."""
    policy = SendingPolicy()
    assert resolve_deadline(5, None, Priority.URGENT, policy, now=NOW).expires_in == 5.0
    assert resolve_deadline(None, None, Priority.URGENT, policy, now=NOW).expires_in == 900.0
    bulk = resolve_deadline(None, None, Priority.BULK, policy, now=NOW)
    assert bulk.expires_in is None
    assert bulk.send_by is None


def test_send_by_is_an_aware_datetime_in_the_future() -> None:
    """send_by becomes epoch seconds."""
    when = datetime.fromtimestamp(NOW, UTC) + timedelta(minutes=5)
    assert resolve_deadline(None, when, Priority.NORMAL, SendingPolicy(), now=NOW).send_by == (
        NOW + 300
    )


@pytest.mark.parametrize(
    ("expires_in", "send_by", "field", "problem"),
    [
        (5, datetime(2030, 1, 1, tzinfo=UTC), "expires_in", "not both"),
        (0, None, "expires_in", "more than 0"),
        (-1, None, "expires_in", "more than 0"),
        (float("nan"), None, "expires_in", "more than 0"),
        ("5", None, "expires_in", "number of seconds"),
        (True, None, "expires_in", "number of seconds"),
        (10**9, None, "expires_in", "at most"),
        (None, datetime(2030, 1, 1), "send_by", "time zone"),
        (None, datetime(2020, 1, 1, tzinfo=UTC), "send_by", "in the past"),
        (None, "2030-01-01", "send_by", "datetime"),
    ],
)
def test_a_bad_deadline_names_its_argument(
    expires_in: object, send_by: object, field: str, problem: str
) -> None:
    """Bad deadlines raise InvalidSendRequest naming the argument."""
    with pytest.raises(InvalidSendRequest, match=problem) as caught:
        resolve_deadline(expires_in, send_by, Priority.NORMAL, SendingPolicy(), now=NOW)
    assert caught.value.field == field
