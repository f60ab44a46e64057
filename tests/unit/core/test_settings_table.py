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


@pytest.mark.parametrize("setting", [s for s in SETTINGS if s.field], ids=lambda s: s.name)
def test_the_settings_defaults_are_the_declared_ones(setting: Setting[Any]) -> None:
    """An unset variable and a Settings built without it both hold the declared default."""
    assert attribute(Settings(), setting.field) == setting.value
    assert attribute(load_settings({}), setting.field) == setting.value


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
