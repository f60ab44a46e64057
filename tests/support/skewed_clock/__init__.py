"""A worker whose wall clock is wrong, for clock tests and ``make chaos`` (see sitecustomize)."""

from __future__ import annotations

import os
from pathlib import Path

#: The directory whose ``sitecustomize`` skews the clock of a Python process started with it.
HOOK_DIR = Path(__file__).resolve().parent


def skewed(seconds: float) -> dict[str, str]:
    """Environment of a child process whose ``time.time()`` runs ``seconds`` off."""
    path = os.pathsep.join(p for p in (str(HOOK_DIR), os.environ.get("PYTHONPATH", "")) if p)
    return {"PYTHONPATH": path, "ENGAGE_TEST_CLOCK_SKEW": repr(float(seconds))}
