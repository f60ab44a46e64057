"""A ``PATH`` without some programs, for proving the project runs where they are not installed.

Builds a directory of links to every program on the current ``PATH`` except the hidden ones, so
a child process finds python3, make and the rest, but not ``redis-server``.
"""

from __future__ import annotations

import os
from pathlib import Path


def path_without(hidden: tuple[str, ...], directory: Path) -> str:
    """A ``PATH`` value: links in ``directory`` to every program on ``PATH`` but ``hidden``."""
    directory.mkdir(parents=True, exist_ok=True)
    for entry in os.environ.get("PATH", "").split(os.pathsep):
        folder = Path(entry)
        if not entry or not folder.is_dir():
            continue
        for program in folder.iterdir():
            link = directory / program.name
            if program.name in hidden or link.exists() or link.is_symlink():
                continue
            if program.is_file() and os.access(program, os.X_OK):
                link.symlink_to(program)
    return str(directory)
