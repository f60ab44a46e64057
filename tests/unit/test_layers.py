"""What the layers contract (import-linter, pyproject.toml) does not say, read with ast.

``lint-imports`` (run by make lint) checks that imports point down the layers, read from the
folders of ``tasks/``. These tests add: no modules import each other at import time (imports
inside functions run later and cannot make a cycle), and each function-level import says why it
is there. The reader is ``scripts/import_graph.py``'s, which prints the whole graph.
"""

from __future__ import annotations

import ast

import pytest
from import_graph import MODULES, ROOT, cycles, explained, imports_of, parse, statements, targets

GRAPH = {module: imports_of(module) for module in MODULES}


def test_no_import_cycles() -> None:
    """No modules import each other at import time, directly or round a loop."""
    edges = {m: {i.target for i in imports if not i.lazy} for m, imports in GRAPH.items()}
    assert cycles(edges) == []


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
    found = [t for node in nodes for t in targets(node, "tasks.api", is_package=False)]
    assert found == ["tasks.delivery.metrics", "tasks.delivery.runtime", "tasks.engage"]


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
