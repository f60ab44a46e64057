"""The README's settings table lists every variable the settings read."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VARIABLE = re.compile(r'"((?:ENGAGE|CELERY)_[A-Z_]+|REDIS_URL)"')


def test_every_variable_read_by_the_settings_is_in_the_readme_table() -> None:
    """Each variable named in tasks/settings.py has a row in README's Configuration table."""
    read = set(VARIABLE.findall((ROOT / "tasks" / "settings.py").read_text()))
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = {
        name
        for line in table.splitlines()
        if line.startswith("| `")
        for name in re.findall(r"`([A-Z_]+)`", line.split("|")[1])
    }
    assert "ENGAGE_SCHEDULE_FILE" in read
    assert read - rows == set()
