"""What ``engage-sms`` exits with: one :class:`ExitCode` per outcome, each with its meaning.

``engage-sms --help`` lists them (:func:`help_epilog`) and the README's table is
:func:`markdown_table` (``tests/unit/cli/test_exit_codes.py`` holds the two to each other).
"""

from __future__ import annotations

import textwrap
from enum import IntEnum
from typing import Self


class ExitCode(IntEnum):
    """The exit status of every ``engage-sms`` command; ``meaning`` is its one-line doc."""

    meaning: str

    def __new__(cls, code: int, meaning: str) -> Self:
        """A member whose value is ``code``; ``meaning`` is written as Markdown (backticks)."""
        member = int.__new__(cls, code)
        member._value_ = code
        member.meaning = meaning
        return member

    OK = 0, "done (`send --wait`: sent)"
    FAILED = (
        1,
        "the send failed (dead-lettered, expired, capped, suppressed), the key, entry or token "
        "asked about is unknown, or part of what was asked failed (`cancel`, `dlq replay`, a "
        "`doctor` check, `demo`)",
    )
    USAGE = (
        2,
        "bad input or configuration, or a batch `dlq` command not confirmed (nothing changed)",
    )
    PENDING = 3, "still in progress when `--wait` ran out"
    UNAVAILABLE = (
        4,
        "Redis or the broker did not answer: one line names it and its URL, password masked "
        "(nothing changed)",
    )


def help_epilog(width: int = 79) -> str:
    """The exit codes as ``engage-sms --help`` ends: one entry per code, wrapped to ``width``."""
    lines = ["exit codes:"]
    for code in ExitCode:
        lines += textwrap.wrap(
            code.meaning.replace("`", ""),
            width,
            initial_indent=f"  {code.value}  ",
            subsequent_indent="     ",
        )
    return "\n".join(lines) + "\n"


def markdown_table() -> str:
    """The exit codes as the README's table."""
    rows = [f"| {code.value} | {code.meaning} |" for code in ExitCode]
    return "\n".join(["| code | meaning |", "|---|---|", *rows]) + "\n"
