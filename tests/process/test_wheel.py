"""The wheel as a host application gets it, run by the README's Host integration commands.

Builds the wheel, installs it (and only what it declares) into a new virtual environment and,
from a directory outside the repository, runs the sandbox, this package's worker, the host's own
Celery worker and beat with a schedule, each as the README's section writes it; enqueues from a
host process that has a Celery app of its own, and checks the SMS was sent once, the callback
reached the host's worker, beat's run was sent by a worker that has no schedule file, the
worker logged its JSON lines, and ``engage-sms doctor`` finds the host's worker consuming the
callbacks. Needs the package registry (pip installs the dependencies) and takes a minute or two:
beat's first tick comes at the next minute boundary.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tasks.cli.local_stack import ManagedProcess
from tests.support.environments import SANDBOX_PASSWORD, SANDBOX_USER, bare_env
from tests.support.own_redis import session_redis_url
from tests.support.real_redis import connected

pytestmark = pytest.mark.process

REPOSITORY = Path(__file__).resolve().parents[2]
#: A database of the session's own Redis: broker and state of the installed package and host.
BROKER = session_redis_url(7)
INSTALL_TIMEOUT = 600
#: Beat ticks at the next minute boundary: up to 60 s, plus a loaded machine's slack.
BEAT_TIMEOUT = 150

HOST_APP = '''\
"""A host application's own Celery app, with the task the SMS callbacks go to."""
import json
import os

from celery import Celery

app = Celery("myapp")  # configured by CELERY_BROKER_URL, like many a host


@app.task(name="myapp.tasks.sms_finished")
def sms_finished(status):
    with open(os.environ["MYAPP_CALLBACKS"], "a") as log:
        log.write(json.dumps(status) + "\\n")
'''

SCHEDULE = """\
[[schedule]]
name = "wheel-check"
every = 60
message_id = 23541
recipients = [{ email = "ann@example.com" }]
"""

ENQUEUE = """\
import myapp
from tasks import send_prepared_sms
handle = send_prepared_sms(23541, mobile="+48 505 606 707", parameters={"firstName": "Ann"},
                           idempotency_key="order-1042-shipped",
                           on_done="myapp.tasks.sms_finished")
assert myapp.app.conf.broker_url.endswith("/7"), myapp.app.conf.broker_url
print(handle.key)
"""


def readme_commands() -> dict[str, list[str]]:
    """The ``celery -A ...`` lines of the README's Host integration section, by app and command."""
    readme = (REPOSITORY / "README.md").read_text()
    section = readme.split("## Host integration", 1)[1].split("\n## ", 1)[0]
    commands = {}
    for line in section.splitlines():
        if re.match(r"^(\w+=\S+ )*celery -A ", line):
            argv = shlex.split(line)
            start = argv.index("celery")
            commands[f"{argv[start + 2]} {argv[start + 3]}"] = argv
    return commands


def split_env(argv: list[str]) -> tuple[dict[str, str], list[str]]:
    """``VAR=value ... command`` as (variables, command)."""
    start = argv.index("celery")
    return dict(token.split("=", 1) for token in argv[:start]), argv[start:]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtual environment with the freshly built wheel installed: its bin directory."""
    root = tmp_path_factory.mktemp("wheel")
    wheels = root / "dist"
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(wheels),
            str(REPOSITORY),
        ]
    )
    (wheel,) = wheels.glob("engage_sms-*.whl")
    venv = root / "venv"
    run([sys.executable, "-m", "venv", str(venv)])
    run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)])
    return venv / "bin"


def run(argv: list[str], **options: Any) -> subprocess.CompletedProcess[str]:
    """Run a setup command; its output in the failure when it fails."""
    result = subprocess.run(
        argv, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False, **options
    )
    assert result.returncode == 0, f"{argv}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture
def host_dir(tmp_path: Path) -> Path:
    """A directory outside the repository, holding the host's app and the schedule file."""
    assert REPOSITORY not in tmp_path.parents
    (tmp_path / "myapp.py").write_text(HOST_APP)
    (tmp_path / "schedules.toml").write_text(SCHEDULE)
    return tmp_path


@pytest.fixture
def broker() -> Iterator[str]:
    """An empty database of the session's own Redis."""
    with connected(BROKER) as client:
        client.flushdb()
        yield BROKER
        client.flushdb()


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def get_json(url: str) -> Any:
    """GET a sandbox control path."""
    with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310  (loopback)
        return json.loads(answer.read())


def wait_until(check: Any, timeout: float, what: str) -> Any:
    """Poll ``check`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.25)
    return value


def test_installed_wheel_runs_worker_enqueue_beat_and_host_callback(
    installed: Path, host_dir: Path, broker: str
) -> None:
    """Installed from the wheel and run from elsewhere, everything of Host integration works."""
    commands = readme_commands()
    assert {"tasks worker", "tasks beat", "myapp worker"} <= set(commands)
    port = free_port()
    sandbox_root = f"http://127.0.0.1:{port}"
    callbacks = host_dir / "callbacks.jsonl"
    # Only the installed environment: no PYTHONPATH, no package variables of this test run.
    env = bare_env(
        PATH=f"{installed}{os.pathsep}{os.environ['PATH']}",
        VIRTUAL_ENV=str(installed.parent),
        ENGAGE_BROKER_URL=broker,
        CELERY_BROKER_URL=broker,  # the host's app shares this package's broker
        REDIS_URL=broker,
        MYAPP_CALLBACKS=str(callbacks),
    )
    env.pop("PYTHONPATH", None)
    worker_env = {
        **env,
        "ENGAGE_BASE_URL": f"{sandbox_root}/api/rest/v19",
        "ENGAGE_USERNAME": SANDBOX_USER,
        "ENGAGE_PASSWORD": SANDBOX_PASSWORD,
    }
    beat_vars, beat_argv = split_env(commands["tasks beat"])
    assert set(beat_vars) == {"ENGAGE_SCHEDULE_FILE"}

    def process(argv: list[str], name: str, **extra: str) -> ManagedProcess:
        program = str(installed / argv[0])  # the installed console script, as on the PATH
        log = host_dir / f"{name}.log"
        return ManagedProcess([program, *argv[1:]], env={**extra}, log_path=log, cwd=host_dir)

    sandbox = process(["engage-sms", "sandbox", "--port", str(port)], "sandbox", **env)
    worker = process(commands["tasks worker"], "worker", **worker_env)
    host_worker = process(commands["myapp worker"], "myapp", **env)
    schedule = str(host_dir / "schedules.toml")
    beat = process(beat_argv, "beat", **env, ENGAGE_SCHEDULE_FILE=schedule)
    processes = [sandbox, worker, host_worker, beat]
    try:
        for started in processes:
            started.start()
        sandbox.wait_for_log("Engage sandbox on", 60)
        worker.wait_for_log(" ready.", 90)
        host_worker.wait_for_log(" ready.", 90)

        enqueued = subprocess.run(
            [str(installed / "python"), "-c", ENQUEUE],
            env=env,
            cwd=host_dir,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert enqueued.returncode == 0, enqueued.stderr
        assert enqueued.stdout.strip() == "order-1042-shipped"

        status = wait_until(lambda: _callback(callbacks), 60, "the host's callback")
        assert (status["key"], status["state"]) == ("order-1042-shipped", "sent")
        assert '"event": "sent"' in worker.log_text()  # --loglevel INFO shows our JSON lines

        doctor = subprocess.run(
            [str(installed / "engage-sms"), "doctor"],
            env=worker_env,
            cwd=host_dir,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert doctor.returncode == 0, doctor.stdout + doctor.stderr
        assert "OK   callbacks: queue 'engage.callbacks' is consumed by celery@" in doctor.stdout

        sends = wait_until(
            lambda: [s for s in get_json(f"{sandbox_root}/_sandbox/sends") if _is_beat_run(s)],
            BEAT_TIMEOUT,
            "beat's run to be sent",
        )
        assert [s["count"] for s in sends] == [1]
        assert "ENGAGE_SCHEDULE_FILE" not in worker.env
        assert "has no schedule" not in worker.log_text()
        sent = get_json(f"{sandbox_root}/_sandbox/sends")
        assert [s["count"] for s in sent if s["recipientId"] == 33457] == [1]  # the order, once
    finally:
        for running in reversed(processes):
            running.stop()
    for name in ("worker", "beat", "myapp"):
        assert "Traceback" not in (host_dir / f"{name}.log").read_text(), name


def _callback(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return lines[-1] if lines else None


def _is_beat_run(send: dict[str, Any]) -> bool:
    return bool(send.get("recipientId") == 33458)
