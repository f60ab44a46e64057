"""Quiet hours: the window, the recipient's zones from its number, and when a send may go."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from tasks.core.errors import ConfigurationError
from tasks.core.quiet_hours import parse_window, parse_zone, quiet_in, quiet_until, recipient_zones

NIGHT = parse_window("21:00-08:00")
WARSAW = ("Europe/Warsaw",)


def test_a_window_across_midnight_holds_both_ends() -> None:
    """21:00-08:00 contains 23:30 and 07:59, not 08:00 or 20:59."""
    assert NIGHT.contains(time(23, 30))
    assert NIGHT.contains(time(7, 59))
    assert not NIGHT.contains(time(8, 0))
    assert not NIGHT.contains(time(20, 59))


def test_a_window_within_a_day_and_seconds_are_read() -> None:
    """12:00:30-12:01 holds 12:00:45 only."""
    window = parse_window("12:00:30-12:01")
    assert window.contains(time(12, 0, 45))
    assert not window.contains(time(12, 0, 10))


@pytest.mark.parametrize("text", ["21-08", "25:00-08:00", "21:00", "21:00-21:00", "nine-five"])
def test_a_malformed_window_names_the_setting(text: str) -> None:
    """Bad quiet hours stop the configuration with the variable's name."""
    with pytest.raises(ConfigurationError, match="ENGAGE_QUIET_HOURS"):
        parse_window(text)


def test_an_unknown_zone_names_the_setting() -> None:
    """ENGAGE_DEFAULT_TIMEZONE must be an IANA zone."""
    with pytest.raises(ConfigurationError, match="ENGAGE_DEFAULT_TIMEZONE"):
        parse_zone("Mars/Olympus")


def test_a_polish_number_is_in_warsaw_and_an_address_in_the_default_zone() -> None:
    """Zones come from the number; e-mail and other identifiers use the default zone."""
    assert recipient_zones("MOBILE", "48505606707", "UTC") == WARSAW
    assert recipient_zones("EMAIL", "ann@example.com", "America/Chicago") == ("America/Chicago",)
    assert recipient_zones("ID", "33457", "UTC") == ("UTC",)


def test_an_australian_mobile_spans_several_zones() -> None:
    """A country with several zones gives them all."""
    zones = recipient_zones("MOBILE", "61412345678", "UTC")
    assert "Australia/Perth" in zones
    assert "Australia/Sydney" in zones


def test_quiet_while_any_zone_is_quiet() -> None:
    """21:30 in Perth (23:30 Sydney): both quiet; 07:30 Perth (09:30 Sydney): Perth is."""
    zones = ("Australia/Perth", "Australia/Sydney")
    perth_2130 = datetime(2026, 6, 1, 13, 30, tzinfo=UTC)  # Perth UTC+8, Sydney UTC+10
    assert quiet_in(NIGHT, zones, perth_2130)
    perth_0730 = datetime(2026, 6, 1, 23, 30, tzinfo=UTC)
    assert quiet_in(NIGHT, zones, perth_0730)
    assert not quiet_in(NIGHT, ("Australia/Sydney",), perth_0730)


def test_a_send_outside_the_window_goes_now() -> None:
    """At noon in Warsaw nothing waits."""
    assert quiet_until(NIGHT, WARSAW, datetime(2026, 6, 1, 10, 0, tzinfo=UTC)) is None


def test_a_send_at_night_waits_for_the_window_to_end_in_its_zone() -> None:
    """At 23:00 Warsaw summer time (21:00 UTC) the send waits until 08:00 Warsaw (06:00 UTC)."""
    until = quiet_until(NIGHT, WARSAW, datetime(2026, 6, 1, 21, 0, tzinfo=UTC))
    assert until == datetime(2026, 6, 2, 6, 0, tzinfo=UTC)


def test_several_zones_wait_for_the_last_to_open() -> None:
    """Perth opens two hours after Sydney: a send to both waits for Perth's 08:00."""
    zones = ("Australia/Perth", "Australia/Sydney")
    until = quiet_until(NIGHT, zones, datetime(2026, 6, 1, 14, 0, tzinfo=UTC))
    assert until == datetime(2026, 6, 2, 0, 0, tzinfo=UTC)  # 08:00 in Perth
