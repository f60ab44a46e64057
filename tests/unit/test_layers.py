"""The package's layers, read from the source with ast: who may import whom, and no cycles.

core (request, masking, errors, settings, ...) < engage, state < delivery < worker < api < http
(the HTTP front door, on the public API) < cli.
The sandbox imports only itself, engage (the SOAP namespaces) and core; only the CLI
imports the sandbox. ``from pkg import submodule`` is a dependency on the submodule, not on the
package. Imports inside functions count for the layers (they run sooner or later) but not for
cycles (they do not run at import time); imports under ``if TYPE_CHECKING:`` never run.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "tasks"

#: Top-level modules of the core layer: the re-export of tasks.core.errors where users catch it.
BOTTOM = frozenset({"errors"})
#: Layers from the bottom up; a module may import its own part and the parts of lower layers.
ORDER: tuple[frozenset[str], ...] = (
    frozenset({"core"}),
    frozenset({"engage", "state"}),
    frozenset({"delivery"}),
    frozenset({"worker"}),
    frozenset({"api"}),
    frozenset({"http"}),  # the HTTP front door: on the public API and the state stores
    frozenset({"cli"}),
    frozenset({"package"}),  # tasks/__init__.py: the lazy public names
)
#: Parts outside the order, with what they may import and who may import them.
SANDBOX_MAY_IMPORT = frozenset({"sandbox", "engage", "core"})
SANDBOX_USERS = frozenset({"sandbox", "cli", "package"})

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


def part_of(module: str) -> str | None:
    """The layer part of a module: its subpackage (``core`` too), ``api``, ``package``, or None."""
    parts = module.split(".")
    if parts == [PACKAGE]:
        return "package"
    name = parts[1]
    if (ROOT / PACKAGE / name / "__init__.py").exists():
        return name
    if name in BOTTOM:
        return "core"
    # The test double for host apps stands in for the API at the API's level.
    return "api" if name in ("api", "testing") else None


def may_import(importer: str, imported: str) -> bool:
    """Whether a module of part ``importer`` may import one of part ``imported``."""
    if importer == imported:
        return True
    if imported == "sandbox":
        return importer in SANDBOX_USERS
    if importer == "sandbox":
        return imported in SANDBOX_MAY_IMPORT
    level = {part: n for n, layer in enumerate(ORDER) for part in layer}
    return level[imported] < level[importer]


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
        for target in _targets(node, module, is_package=is_package):
            found.append(Import(module, target, node.lineno, lazy))
    return found


def _targets(node: ImportNode, module: str, *, is_package: bool) -> Iterator[str]:
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


GRAPH = {module: imports_of(module) for module in MODULES}


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


def test_every_module_belongs_to_a_layer() -> None:
    """A new top-level module must be placed in a layer here before it can be imported."""
    assert [m for m in MODULES if part_of(m) is None] == []


def test_no_module_imports_a_higher_layer() -> None:
    """Each import goes down the layers (or stays in its part), lazy imports included."""
    wrong = [
        f"{i.source}:{i.line} imports {i.target}"
        for imports in GRAPH.values()
        for i in imports
        if (src := part_of(i.source)) and (dst := part_of(i.target)) and not may_import(src, dst)
    ]
    assert wrong == []


def test_no_import_cycles() -> None:
    """No modules import each other at import time, directly or round a loop."""
    edges = {m: {i.target for i in imports if not i.lazy} for m, imports in GRAPH.items()}
    assert cycles(edges) == []


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


def test_function_local_imports_say_why() -> None:
    """An import inside a function carries ``# noqa: PLC0415`` and says why it is there."""
    unexplained = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for module, path in MODULES.items()
        for lines in [path.read_text(encoding="utf-8").splitlines()]
        for node, lazy in statements(parse(module).body, lazy=False)
        if lazy and not explained(lines, node)
    ]
    assert unexplained == []


# -- the checker itself ---------------------------------------------------------------------


def test_from_a_package_import_a_submodule_is_a_dependency_on_the_submodule() -> None:
    """``from tasks.delivery import metrics`` depends on tasks.delivery.metrics, not the package."""
    tree = ast.parse("from tasks.delivery import metrics, runtime\nfrom tasks.engage import X\n")
    nodes = [node for node, _ in statements(tree.body, lazy=False)]
    targets = [t for node in nodes for t in _targets(node, "tasks.api", is_package=False)]
    assert targets == ["tasks.delivery.metrics", "tasks.delivery.runtime", "tasks.engage"]


def test_imports_in_functions_are_lazy_and_type_checking_ones_are_skipped() -> None:
    """Function bodies give lazy imports; ``if TYPE_CHECKING:`` blocks give none."""
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    import tasks.api\n"
        "def f():\n    import tasks.cli  # noqa: PLC0415  (only f needs it)\n"
    )
    found = [
        (node.names[0].name, lazy) for node, lazy in statements(ast.parse(source).body, lazy=False)
    ]
    assert found == [("TYPE_CHECKING", False), ("tasks.cli", True)]


@pytest.mark.parametrize(
    ("source", "says_why"),
    [
        ("import x  # noqa: PLC0415  (loads Celery)", True),
        ("import x  # noqa: PLC0415 - only this command needs it", True),
        (
            "# Celery loads only for this command.\n"
            "import y  # noqa: PLC0415\n"
            "import x  # noqa: PLC0415",
            True,
        ),
        ("import x  # noqa: PLC0415", False),
        ("import x  # noqa: PLC0415  ()", False),
        ("# why\nimport x", False),
        ("y = 1\nimport x  # noqa: PLC0415", False),
    ],
)
def test_a_reason_is_words_after_the_noqa_or_a_comment_above(source: str, says_why: bool) -> None:
    """A bare noqa is not a reason; words after it, or a comment above the import group, are."""
    body = "def f():\n" + "".join(f"    {line}\n" for line in source.splitlines())
    *_, (node, lazy) = statements(ast.parse(body).body, lazy=False)
    assert lazy
    assert explained(body.splitlines(), node) is says_why


def test_a_loop_of_three_modules_is_a_cycle() -> None:
    """a -> b -> c -> a is reported once, as one group; a -> d is not."""
    assert cycles({"a": {"b", "d"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]


def test_an_upward_import_is_refused_and_the_sandbox_is_fenced() -> None:
    """state may not import worker; the sandbox may use engage, not state; only cli uses it."""
    assert not may_import("state", "worker")
    assert may_import("worker", "state")
    assert not may_import("engage", "state")
    assert may_import("sandbox", "engage")
    assert not may_import("sandbox", "state")
    assert may_import("cli", "sandbox")
    assert not may_import("worker", "sandbox")
