"""Phase 6: Redis memory of a finished send's ledger record (slim final records)."""

from __future__ import annotations

import importlib
import sys

from benchmarks.harness import REPOSITORY, Bench, Row
from benchmarks.report import title
from benchmarks.targets import RECORD_BYTES_TARGET


def run(bench: Bench) -> None:
    """Measure each final state's records (``scripts/record_size.py``) and add a row each."""
    # scripts/record_size.py is a tool of its own (its own Redis and sandbox, steps in process).
    sys.path.insert(0, str(REPOSITORY / "scripts"))
    record_size = importlib.import_module("record_size")

    title("6. final ledger records by MEMORY USAGE (own Redis, steps in this process)")
    for state, values in record_size.run().items():
        worst = max(values)
        bench.add(
            Row(
                f"final {state} record (MEMORY USAGE, max)",
                f"{worst} B",
                f"<= {RECORD_BYTES_TARGET} B",
                worst <= RECORD_BYTES_TARGET,
            )
        )
