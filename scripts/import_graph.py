"""The import graph of the ``tasks`` package, read from the source with :mod:`ast`.

Run it (``python scripts/import_graph.py``) to print ``module -> imports`` lines and the cycles.
The layers are import-linter's contract in pyproject.toml (``lint-imports``, run by make lint);
``tests/unit/test_layers.py`` uses this reader for what a contract does not say: no cycles at
import time, and a reason on each function-level import. ``from pkg import submodule`` is a
dependency on the submodule, not on the package. Imports inside functions are marked ``(lazy)``:
they run when the function does, not at import time, and cannot make a cycle; imports under
``if TYPE_CHECKING:`` never run.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "tasks"

NOQA_WITH_REASON = re.compile(r"#\s*noqa:\s*PLC0415\b[\s,:;(-]*(?P<reason>\w.*)?$")


@dataclass(frozen=True)
class Import:
    """One import statement of the package's own code."""

    source: str
    target: str
    line: int
    #: Inside a function: runs when the function does, not at import time.
    lazy: bool


def module_paths() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its ``__init__``)."""
    paths = {}
    for path in sorted((ROOT / PACKAGE).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        paths[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return paths


MODULES = module_paths()


ImportNode = ast.Import | ast.ImportFrom


def statements(body: list[ast.stmt], *, lazy: bool) -> Iterator[tuple[ImportNode, bool]]:
    """Every import node under ``body`` with whether it is inside a function."""
    for node in body:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from statements(node.orelse, lazy=lazy)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node, lazy
        inner = lazy or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        for field in ("body", "orelse", "finalbody", "handlers"):
            children = getattr(node, field, None)
            if isinstance(children, list):
                # Handlers are not statements but hold statements: walk them alike.
                yield from statements(
                    [c for c in children if isinstance(c, ast.stmt | ast.excepthandler)],  # type: ignore[misc]
                    lazy=inner,
                )
        if isinstance(node, ast.Match):
            for case in node.cases:
                yield from statements(case.body, lazy=inner)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def parse(module: str) -> ast.Module:
    """The syntax tree of ``module``."""
    path = MODULES[module]
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def imports_of(module: str) -> list[Import]:
    """The package's own modules ``module`` imports, one entry per imported module and line."""
    found = []
    is_package = MODULES[module].name == "__init__.py"
    for node, lazy in statements(parse(module).body, lazy=False):
        for target in targets(node, module, is_package=is_package):
            found.append(Import(module, target, node.lineno, lazy))
    return found


def targets(node: ImportNode, module: str, *, is_package: bool) -> Iterator[str]:
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name == PACKAGE or alias.name.startswith(PACKAGE + "."):
                yield _deepest_module(alias.name)
    elif isinstance(node, ast.ImportFrom):
        base = _absolute(node, module, is_package=is_package)
        if base == PACKAGE or base.startswith(PACKAGE + "."):
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                yield sub if sub in MODULES else _deepest_module(base)


def _absolute(node: ast.ImportFrom, module: str, *, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    anchor = module.split(".")
    anchor = anchor if is_package else anchor[:-1]
    anchor = anchor[: len(anchor) - (node.level - 1)]
    return ".".join([*anchor, *([node.module] if node.module else [])])


def _deepest_module(name: str) -> str:
    parts = name.split(".")
    while ".".join(parts) not in MODULES and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Groups of modules that import each other, directly or round a loop (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1 or node in edges.get(node, ()):
                found.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def explained(lines: list[str], node: ImportNode) -> bool:
    """``# noqa: PLC0415`` on the import, and a reason after it or in a comment above its group."""
    start, end = node.lineno, node.end_lineno or node.lineno
    match = NOQA_WITH_REASON.search(" ".join(lines[start - 1 : end]))
    if match is None:
        return False
    if match.group("reason"):
        return True
    above = start - 2
    while above >= 0 and lines[above].strip().startswith(("from ", "import ")):
        above -= 1  # the other imports of the same group
    return above >= 0 and lines[above].strip().startswith("#")


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
