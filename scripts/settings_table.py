"""Write the README's settings table from the declarations in tasks/core/settings.py.

    python scripts/settings_table.py          # rewrite the table in README.md (Configuration)
    python scripts/settings_table.py --check  # exit 1 if README.md's table differs

The table is the block of ``|`` lines under ``## Configuration``; the text around it is kept.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tasks.core.settings import settings_table

README = Path(__file__).resolve().parents[1] / "README.md"
SECTION = "## Configuration\n"


def table_span(text: str) -> tuple[int, int]:
    """Start and end offsets of the settings table in the README's text."""
    section = text.index(SECTION)
    start = text.index("\n| Variable |", section) + 1
    end = start
    while text.startswith("|", end):
        end = text.index("\n", end) + 1
    return start, end


def main() -> int:
    """Rewrite (or with --check, compare) the README's settings table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 if it differs")
    check = parser.parse_args().check
    text = README.read_text()
    start, end = table_span(text)
    if text[start:end] == settings_table():
        return 0
    if check:
        print("README.md: the settings table differs: run python scripts/settings_table.py")
        return 1
    README.write_text(text[:start] + settings_table() + text[end:])
    print("README.md: settings table rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
