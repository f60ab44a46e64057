"""Print the import graph of the ``tasks`` package and its cycles (``scripts/import_graph.py``).

Read from the source with :mod:`ast` by the same reader the layering test uses
(``tests/unit/test_layers.py``), so the two never disagree. Imports inside functions are marked
``(lazy)``: they run when the function does, not at import time, and cannot make a cycle.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.unit.test_layers import MODULES, cycles, imports_of


def main() -> int:
    """Print ``module -> imports`` lines, then the cycles; exit 1 when there is one."""
    graph = {module: imports_of(module) for module in MODULES}
    for module in sorted(graph):
        targets = sorted({i.target + (" (lazy)" if i.lazy else "") for i in graph[module]})
        print(f"{module} -> {', '.join(targets) or '-'}")
    edges = {m: {i.target for i in imports if not i.lazy} for m, imports in graph.items()}
    found = cycles(edges)
    print("cycles:", "; ".join(" <-> ".join(c) for c in found) if found else "none")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
