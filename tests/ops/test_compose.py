"""docker-compose.yml, .env.example and the Dockerfile agree with the code (no Docker needed)."""

from __future__ import annotations

import importlib
import re
import shlex
import tomllib
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from celery import Celery
from celery.bin.celery import celery as celery_command
from celery.concurrency import ALIASES as POOL_ALIASES
from flower.options import options as flower_options

from tasks.cli.main import _parser
from tasks.core.schedule_file import load_schedules
from tasks.core.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
BUILT = {name: s for name, s in SERVICES.items() if "build" in s}
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
ENV_EXAMPLE = (ROOT / ".env.example").read_text()
#: Read by Flower itself, not by this package.
FLOWER_VARIABLES = {"FLOWER_BASIC_AUTH"}

_QUOTED_NAME = re.compile(r"""["']([A-Z][A-Z0-9]*_[A-Z0-9_]+)["']""")
_ENV_LINE = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=(.*)$")
_INTERPOLATED = re.compile(r"\$\$?\{([A-Z][A-Z0-9_]*)")


def argv_of(service: dict[str, Any]) -> list[str]:
    """The service's command as argv; ``sh -c "exec ..."`` is unwrapped to what it runs."""
    command = service["command"]
    argv = shlex.split(command) if isinstance(command, str) else list(command)
    if argv[:2] == ["sh", "-c"]:
        argv = shlex.split(argv[2].replace("$$", "$"))
        assert argv[0] == "exec", "sh -c must exec the program so it gets the stop signal"
        argv = argv[1:]
    return argv


def variables_read_by_code() -> set[str]:
    """Environment variable names read in tasks/core/settings.py (and the sending policy's settings,
    tasks/core/sending_policy.py) and celeryconfig.py."""
    sources = [
        ROOT / "tasks" / "core" / "settings.py",
        ROOT / "tasks" / "core" / "sending_policy.py",
        ROOT / "celeryconfig.py",
    ]
    return {name for path in sources for name in _QUOTED_NAME.findall(path.read_text())}


def env_example(*, active_only: bool) -> dict[str, str]:
    """NAME=value lines of .env.example (commented ones too unless ``active_only``)."""
    found: dict[str, str] = {}
    for line in ENV_EXAMPLE.splitlines():
        match = _ENV_LINE.match(line.strip())
        if match and (not active_only or not line.startswith("#")):
            found[match.group(1)] = match.group(2)
    return found


def celery_option_names(argv: list[str]) -> tuple[str, set[str]]:
    """The celery subcommand in ``argv`` and the option names it accepts."""
    sub = argv[argv.index("tasks") + 1]
    if sub == "flower":
        # Flower's options are tornado options; tornado keeps them in _options (dashed names).
        return sub, {f"--{name}" for name in flower_options._options}
    command = celery_command.get_command(click.Context(celery_command), sub)
    assert command is not None, f"celery has no {sub!r} command"
    return sub, {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}


def test_every_service_is_built_from_the_one_dockerfile() -> None:
    """All services but Redis use the one build context and image."""
    assert set(SERVICES) - set(BUILT) == {"redis"}
    assert {(s["build"], s["image"]) for s in BUILT.values()} == {(".", "engage-sms:local")}
    assert (ROOT / "Dockerfile").exists()


@pytest.mark.parametrize("name", sorted(BUILT))
def test_command_executable_is_a_declared_console_script(name: str) -> None:
    """engage-sms is this project's script; celery's is installed and celery a dependency."""
    executable = argv_of(SERVICES[name])[0]
    assert executable in ("engage-sms", "celery")
    if executable == "engage-sms":
        assert PYPROJECT["project"]["scripts"]["engage-sms"] == "tasks.cli:main"
    else:
        assert entry_points(group="console_scripts", name="celery")
        assert any(d.startswith("celery") for d in PYPROJECT["project"]["dependencies"])


def test_dash_a_tasks_names_the_celery_app() -> None:
    """``-A tasks`` imports a module whose ``app`` is the Celery application."""
    apps = {argv_of(s)[argv_of(s).index("-A") + 1] for s in BUILT.values() if "-A" in argv_of(s)}
    assert apps == {"tasks"}
    assert isinstance(importlib.import_module("tasks").app, Celery)


@pytest.mark.parametrize("name", sorted(n for n, s in BUILT.items() if argv_of(s)[0] == "celery"))
def test_celery_subcommand_and_options_exist(name: str) -> None:
    """worker, beat and flower exist (flower as a plugin) and know every option given."""
    argv = argv_of(SERVICES[name])
    sub, known = celery_option_names(argv)
    given = {
        token.split("=")[0].replace("_", "-") if sub == "flower" else token.split("=")[0]
        for token in argv[argv.index(sub) + 1 :]
        if token.startswith("--")
    }
    assert given <= known, f"unknown options for celery {sub}: {given - known}"
    if "--pool" in argv:
        assert argv[argv.index("--pool") + 1] in POOL_ALIASES


@pytest.mark.parametrize(
    "name", sorted(n for n, s in BUILT.items() if argv_of(s)[0] == "engage-sms")
)
def test_engage_sms_subcommand_parses(name: str) -> None:
    """Every engage-sms command line in compose is accepted by tasks.cli's parser."""
    args = _parser().parse_args(argv_of(SERVICES[name])[1:])
    assert callable(args.handler)


def test_every_variable_named_is_one_the_code_reads() -> None:
    """Names in compose and .env.example are read by settings/celeryconfig (or by Flower)."""
    named = set(env_example(active_only=False))
    named |= set(_INTERPOLATED.findall((ROOT / "docker-compose.yml").read_text()))
    for service in SERVICES.values():
        named |= set(service.get("environment") or {})
    assert named - variables_read_by_code() - FLOWER_VARIABLES == set()


def test_env_example_lists_every_variable_the_code_reads() -> None:
    """.env.example documents every variable, so nothing is configurable only by reading code."""
    assert variables_read_by_code() - set(env_example(active_only=False)) == set()


def test_env_example_is_a_working_sandbox_configuration() -> None:
    """The active lines load as settings and point at the sandbox service's host and port."""
    settings = load_settings(env_example(active_only=True))
    assert settings.require_engage().base_url == "http://sandbox:8099/api/rest/v19"
    sandbox = argv_of(SERVICES["sandbox"])
    assert sandbox[sandbox.index("--host") + 1] == "0.0.0.0"  # noqa: S104  (reachable by service name)
    assert sandbox[sandbox.index("--port") + 1] == "8099"
    assert settings.broker_url.startswith("redis://redis:")


def test_env_example_commented_values_are_the_defaults() -> None:
    """Each commented NAME=value is what the code does without it (examples excepted)."""
    active = env_example(active_only=True)
    defaults = load_settings(active)
    examples = {"CELERY_RESULT_BACKEND", "ENGAGE_SCHEDULE_FILE"}  # optional, no default
    for name, value in env_example(active_only=False).items():
        if name not in active and name not in examples:
            assert load_settings({**active, name: value}) == defaults, name


def test_example_schedule_file_is_valid_and_mounted_in_beat_alone() -> None:
    """schedules.example.toml loads; compose mounts it in beat (the one reader) at the path."""
    assert load_schedules(str(ROOT / "schedules.example.toml"))
    path = env_example(active_only=False)["ENGAGE_SCHEDULE_FILE"]
    assert f"./schedules.example.toml:{path}:ro" in SERVICES["beat"]["volumes"]
    assert "volumes" not in SERVICES["worker"]


def test_example_schedule_reaches_no_real_person() -> None:
    """Enabled against a real tenant by mistake, the example sends only to example.com."""
    for schedule in load_schedules(str(ROOT / "schedules.example.toml")):
        for request in schedule.requests:
            assert request.identifier.type == "EMAIL"
            assert request.identifier.value.endswith("@example.com")


def test_redis_persists_and_never_evicts() -> None:
    """Redis runs append-only with noeviction and has a PING healthcheck."""
    redis = SERVICES["redis"]
    command = " ".join(argv_of(redis))
    assert "--appendonly yes" in command
    assert "--maxmemory-policy noeviction" in command
    assert "--maxmemory " in command  # without a limit the policy never applies
    assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]


def test_flower_runs_the_documented_command_with_its_login_in_the_environment() -> None:
    """Flower runs as ``engage-sms flower`` (never without FLOWER_BASIC_AUTH), on a local port."""
    flower = SERVICES["flower"]
    argv = argv_of(flower)
    assert argv[:2] == ["engage-sms", "flower"]
    assert not any("basic" in token.replace("_", "-") for token in argv)  # no password in argv
    assert flower["ports"] == ["127.0.0.1:5555:5555"]
    assert "FLOWER_BASIC_AUTH" in env_example(active_only=True)


def test_metrics_listen_for_other_containers_only_where_compose_says_so() -> None:
    """Worker and metrics services set ENGAGE_METRICS_ADDRESS=0.0.0.0; the default stays local."""
    for name in ("worker", "metrics"):
        assert SERVICES[name]["environment"]["ENGAGE_METRICS_ADDRESS"] == "0.0.0.0"  # noqa: S104
    assert "ENGAGE_METRICS_ADDRESS" not in env_example(active_only=True)
    assert env_example(active_only=False)["ENGAGE_METRICS_ADDRESS"] == "127.0.0.1"


def test_services_wait_for_healthy_dependencies() -> None:
    """depends_on always waits for health, and only on services that have a healthcheck."""
    for name, service in SERVICES.items():
        for dependency, rule in (service.get("depends_on") or {}).items():
            assert rule == {"condition": "service_healthy"}, name
            assert "healthcheck" in SERVICES[dependency], dependency
    assert set(SERVICES["worker"]["depends_on"]) == {"redis", "sandbox"}


def test_dockerfile_builds_the_package_for_a_non_root_user() -> None:
    """python:3.11-slim, ``pip install .``, and a USER that is not root."""
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()]
    assert "FROM python:3.11-slim" in lines
    assert any(line.startswith("RUN pip install .") for line in lines)
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users
    assert users[-1] not in ("root", "0")
