"""No module of tasks/ reads an environment variable tasks/core/settings.py does not declare."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tasks.core.settings import SETTINGS

PACKAGE = Path(__file__).resolve().parents[3] / "tasks"
ENGAGE_VARIABLE = re.compile(r"\bENGAGE_[A-Z0-9_]*[A-Z0-9]\b")
DECLARED = {setting.name for setting in SETTINGS}
#: The methods of :class:`tasks.core.environment.Environment` that read a variable by its name.
ENVIRONMENT_READS = {
    "text", "optional_text", "url", "number", "integer", "optional_port", "task_name", "choice"
}  # fmt: skip
#: Variables read by hand, each for a reason: none of them is this package's setting.
NOT_OURS = {
    # Flower's login: Flower reads it itself; `engage-sms flower` only checks it is a login list.
    "FLOWER_BASIC_AUTH",
    # requests' own CA variables, read once where the Engage session is built (tasks/engage/http).
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
}


def modules() -> list[Path]:
    """Every Python module of the package."""
    return sorted(PACKAGE.rglob("*.py"))


def strings(path: Path) -> list[str]:
    """The string constants of one module (docstrings and f-string parts included)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    ]


def environment_reads(path: Path) -> set[str]:
    """Names read by ``os.getenv("X")``, ``<...>environ.get("X")``, ``<...>environ["X"]`` or an
    :class:`tasks.core.environment.Environment` method (``env.optional_text("X")``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = ast.unparse(node.func.value)
            reads = (
                (node.func.attr == "get" and owner.endswith("environ"))
                or node.func.attr == "getenv"
                or (owner == "env" and node.func.attr in ENVIRONMENT_READS)
            )
            if reads and node.args and isinstance(node.args[0], ast.Constant):
                names.add(str(node.args[0].value))
        if (
            isinstance(node, ast.Subscript)
            and isinstance(node.slice, ast.Constant)
            and ast.unparse(node.value).endswith("environ")
        ):
            names.add(str(node.slice.value))
    return names


def test_every_engage_variable_named_in_the_package_is_declared() -> None:
    """An ENGAGE_* name in any module's strings has a declaration (so a row in the README)."""
    named = {
        (str(path.relative_to(PACKAGE.parent)), name)
        for path in modules()
        for text in strings(path)
        for name in ENGAGE_VARIABLE.findall(text)
    }
    # The scan reads the modules that name the policy's variables, not only tasks/core/settings.py.
    assert ("tasks/core/sending_policy.py", "ENGAGE_QUIET_HOURS") in named
    assert {f"{path}: {name}" for path, name in named if name not in DECLARED} == set()


def test_the_environment_is_read_by_hand_only_for_variables_not_ours() -> None:
    """Each read by name (os.environ, os.getenv, Environment) is declared or one of NOT_OURS."""
    read = {name for path in modules() for name in environment_reads(path)}
    assert {"FLOWER_BASIC_AUTH", "REQUESTS_CA_BUNDLE"} <= read
    assert read - DECLARED - NOT_OURS == set()


def test_no_setting_is_read_by_its_name_outside_its_declaration() -> None:
    """Every ENGAGE_* variable is read by the one loader through its declaration's reader."""
    read = {f"{path.name}: {name}" for path in modules() for name in environment_reads(path)}
    assert {entry for entry in read if ": ENGAGE_" in entry} == set()
