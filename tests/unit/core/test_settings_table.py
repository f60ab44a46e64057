"""The settings are declared once (tasks/core/settings.py): the README's table comes from them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tasks.core.environment import Setting
from tasks.core.errors import ConfigurationError
from tasks.core.settings import SETTINGS, Settings, load_settings, settings_table

ROOT = Path(__file__).resolve().parents[3]
VARIABLE = re.compile(r'"((?:ENGAGE|CELERY)_[A-Z_]+|REDIS_URL)"')
NUMBERS = [s for s in SETTINGS if s.field and s.type in (int, float)]


def readme_table() -> str:
    """The block of table lines under README's ``## Configuration``."""
    section = (ROOT / "README.md").read_text().split("## Configuration\n", 1)[1]
    lines = section.splitlines(keepends=True)
    start = next(n for n, line in enumerate(lines) if line.startswith("| Variable |"))
    end = next(n for n in range(start, len(lines)) if not lines[n].startswith("|"))
    return "".join(lines[start:end])


def test_the_readme_table_is_the_generated_one() -> None:
    """README's Configuration table is exactly what scripts/settings_table.py writes."""
    assert readme_table() == settings_table()


def test_every_variable_read_by_the_settings_is_declared() -> None:
    """Each variable named in tasks/core/settings.py has a declaration (so a row in the README)."""
    read = set(VARIABLE.findall((ROOT / "tasks" / "core" / "settings.py").read_text()))
    assert "ENGAGE_SCHEDULE_FILE" in read
    assert read - {s.name for s in SETTINGS} == set()


def test_each_variable_is_declared_once() -> None:
    """No two declarations share a variable or fill the same attribute."""
    names = [s.name for s in SETTINGS]
    fields = [s.field for s in SETTINGS if s.field]
    assert len(names) == len(set(names))
    assert len(fields) == len(set(fields))


def attribute(settings: Settings, path: str) -> Any:
    """``retry.base_delay`` of ``settings``."""
    value: Any = settings
    for part in path.split("."):
        value = getattr(value, part)
    return value


PLAIN = [s for s in SETTINGS if s.field and not s.shown]
#: A ``shown`` default that is a value: its last backquoted word (```1` with ..., else `0```).
SHOWN_VALUE = re.compile(r"`([^`]*)`$")


def test_every_setting_fills_an_attribute() -> None:
    """Every declaration is read by the one loader into an attribute, but Celery's fallback."""
    assert [s.name for s in SETTINGS if not s.field] == ["CELERY_BROKER_URL"]


@pytest.mark.parametrize("setting", PLAIN, ids=lambda s: s.name)
def test_the_settings_defaults_are_the_declared_ones(setting: Setting[Any]) -> None:
    """An unset variable and a Settings built without it both hold the declared default."""
    if setting.field.startswith("engage."):  # Engage's settings exist only with its login
        login = {"ENGAGE_BASE_URL": "https://t.example/api", "ENGAGE_USERNAME": "u"}
        engage = load_settings({**login, "ENGAGE_PASSWORD": "p"}).require_engage()
        assert getattr(engage, setting.field.partition(".")[2]) == setting.value
        return
    assert attribute(Settings(), setting.field) == setting.value
    assert attribute(load_settings({}), setting.field) == setting.value


def words(value: Any) -> set[str]:
    """A value as the README's words: a set's members, None as ``none``."""
    if value is None:
        return {"none"}
    if isinstance(value, frozenset | set):
        return {str(member) for member in value}
    return {str(value)}


@pytest.mark.parametrize("setting", [s for s in SETTINGS if s.shown], ids=lambda s: s.name)
def test_the_readme_shows_the_default_the_loader_gives(setting: Setting[Any]) -> None:
    """Each ``shown`` default that is a value, or ``unset``, is what an empty environment gives."""
    loaded = load_settings({})
    if setting.name == "REDIS_URL":  # "the broker URL"
        assert loaded.redis_url == loaded.broker_url
        return
    if setting.field.startswith("engage."):  # Engage's login: none without ENGAGE_BASE_URL
        assert loaded.engage is None
        return
    value = attribute(loaded, setting.field)
    if setting.shown.startswith("required"):
        assert value is None
        return
    if setting.shown.startswith("unset"):
        assert value in (None, {})
        return
    match = SHOWN_VALUE.search(setting.shown)
    assert match, f"{setting.name}: shown {setting.shown!r} is no value"
    shown = match.group(1).replace("{prefix}", loaded.key_prefix)
    expected = {"off": {"none"}}.get(shown, set(shown.split(",")))
    assert words(value) == expected


@pytest.mark.parametrize("setting", NUMBERS, ids=lambda s: s.name)
def test_a_value_below_the_declared_bound_is_refused(setting: Setting[Any]) -> None:
    """Below its minimum, each numeric variable stops the settings with its name."""
    # Half below for fractions: a deadline's 0 is a word for none, not a number below its bound.
    below = setting.minimum - (1 if setting.type is int else 0.5)
    with pytest.raises(ConfigurationError, match="must be at least") as caught:
        load_settings({setting.name: str(below)})
    assert caught.value.setting == setting.name


@pytest.mark.parametrize("setting", NUMBERS, ids=lambda s: s.name)
def test_a_set_value_reaches_its_attribute(setting: Setting[Any]) -> None:
    """Each numeric variable, when set, lands in the attribute its declaration names."""
    given = setting.type(setting.minimum) + 7
    settings = load_settings({setting.name: str(given), "ENGAGE_VISIBILITY_TIMEOUT": "99999"})
    expected = 99999.0 if setting.name == "ENGAGE_VISIBILITY_TIMEOUT" else given * setting.scale
    assert attribute(settings, setting.field) == expected
