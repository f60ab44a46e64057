"""Engage answers that echo the recipient and the parameter values never show them whole.

A real worker, the sandbox and Flower, over REST and over SOAP. The sandbox echoes what each call
named: a proxy's 200 login page quoting the number (contact/get), a 400 whose JSON message (a
SOAP fault on SOAP) quotes the e-mail address, a 503 and then a 400 quoting the parameter values
(message/sendSingle). Then every place an operator looks is searched for the values in clear:
the worker's log, ``engage-sms status``, ``engage-sms dlq list --json`` and ``dlq show``, and
Flower's ``/api/tasks`` (arguments, exceptions, tracebacks).
"""

from __future__ import annotations

import base64
import json
import secrets
import socket
import string
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tasks.cli.demo import FLOWER_USER
from tasks.cli.local_stack import ManagedProcess
from tasks.sandbox import Sandbox
from tests.integration.conftest import wait_for
from tests.support import sandbox as sandboxes
from tests.support.environments import WORKER_ENV, child_env
from tests.support.own_redis import session_redis_url
from tests.support.processes import run_module, start_worker_and_flower
from tests.support.real_redis import require_redis

pytestmark = pytest.mark.integration

BROKER = session_redis_url(11)
MOBILE = "+48 505 606 707"  # the sandbox's demo contact
EMAIL = "Jan.Kowalski@example.com"
PARAMETERS = {"firstName": "Zebulon Quartz", "code": "QX-7781-ZETA"}
#: What must not appear anywhere, in any case: the number in each form, the address, the values.
PRIVATE = (
    "48505606707",
    "505606707",
    "505 606 707",
    "jan.kowalski@example.com",
    "Zebulon",
    "Quartz",
    "QX-7781-ZETA",
)
#: The faults, by send: each answer quotes what its call named.
FAULTS = {
    "page": {"contact/get": ["html:echo"] * 3},
    "json": {"contact/get": ["echo:400"]},
    "send": {"message/sendSingle": ["echo:503", "echo:400"]},
}


@dataclass
class Run:
    """What one transport's run left behind, as operators see it."""

    transport: str
    sandbox: Sandbox
    keys: dict[str, str]
    #: Each place an operator looks, and what it showed.
    shown: dict[str, str] = field(default_factory=dict)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def flower_get(port: int, password: str, path: str) -> Any:
    """GET a Flower API path with basic auth; parsed JSON, or None on an error status."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    token = base64.b64encode(f"{FLOWER_USER}:{password}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310  (local)
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError:
        return None


def cli(env: dict[str, str], *args: str) -> str:
    """Run ``engage-sms args...``; its output, stdout and stderr."""
    result = run_module("tasks.cli", *args, env=env)
    return result.stdout + result.stderr


def send(env: dict[str, str], key: str, *recipient: str) -> None:
    """``engage-sms send --wait``: returns once the send is final (dead-lettered here)."""
    params = [arg for name, value in PARAMETERS.items() for arg in ("--param", f"{name}={value}")]
    cli(
        env,
        "send",
        "--message-id",
        "23541",
        *recipient,
        *params,
        "--idempotency-key",
        key,
        "--wait",
        "60",
    )


def failed_in_flower(port: int, password: str, keys: list[str]) -> str | None:
    """Flower's /api/tasks as text, once it shows a failed task for every key."""
    tasks = flower_get(port, password, "/api/tasks") or {}
    failed = [t for t in tasks.values() if t.get("state") == "FAILURE"]
    if all(any(key in str(t.get("args")) for t in failed) for key in keys):
        return json.dumps(tasks)
    return None


@pytest.fixture(scope="module", params=["rest", "soap"])
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """Sandbox, worker and Flower on one transport; the three echoing sends, each to its end."""
    require_redis(BROKER)
    transport: str = request.param
    logs: Path = tmp_path_factory.mktemp(f"private-{transport}")
    letters = "".join(secrets.choice(string.ascii_lowercase) for _ in range(10))
    password = secrets.token_urlsafe(12)
    flower_port = free_port()
    processes: list[ManagedProcess] = []
    with Sandbox() as sandbox:
        sandboxes.fresh(sandbox)
        env = child_env(
            WORKER_ENV,
            CELERY_BROKER_URL=BROKER,
            ENGAGE_BASE_URL=sandbox.soap_url if transport == "soap" else sandbox.base_url,
            ENGAGE_TRANSPORT=transport,
            ENGAGE_KEY_PREFIX=f"private-{letters}",
        )
        env.pop("ENGAGE_SCHEDULE_FILE", None)
        keys = {name: f"private-{transport}-{letters}-{name}" for name in FAULTS}
        try:
            worker, flower = start_worker_and_flower(
                env,
                logs,
                name=f"private-{letters}",
                password=password,
                port=flower_port,
                started=processes,
            )
            wait_for(lambda: flower_get(flower_port, password, "/api/workers") is not None, 30)
            recipients = {"page": ("--mobile", MOBILE), "json": ("--email", EMAIL)}
            for name, plan in FAULTS.items():
                sandbox.state.set_faults({"script": plan})
                send(env, keys[name], *recipients.get(name, ("--mobile", MOBILE)))
            shown = {
                "flower /api/tasks": wait_for(
                    lambda: failed_in_flower(flower_port, password, list(keys.values())),
                    30,
                    "Flower to show every failed task",
                ),
                "worker log": worker.log_text(),
                "flower log": flower.log_text(),
                "dlq list --json": cli(env, "dlq", "list", "--json"),
            }
            for name, key in keys.items():
                shown[f"status {name}"] = cli(env, "status", key)
                shown[f"dlq show {name}"] = cli(env, "dlq", "show", key)
            yield Run(transport, sandbox, keys, shown)
        finally:
            for process in reversed(processes):
                process.stop()


def test_every_echo_was_answered_and_every_send_dead_lettered(run: Run) -> None:
    """The sandbox answered each scripted echo, and each send ended in the dead-letter store."""
    answered = [(c.operation, c.status) for c in run.sandbox.state.calls]
    assert answered == [
        *[("contact/get", 200)] * 3,  # the login page, each try
        ("contact/get", 400),
        ("contact/get", 200),  # the real lookup, then the send's echoes
        ("message/sendSingle", 503),
        ("message/sendSingle", 400),
    ]
    for name in FAULTS:
        assert '"state": "dead_lettered"' in run.shown[f"status {name}"]


@pytest.mark.parametrize(
    "where",
    [
        "worker log",
        "flower log",
        "flower /api/tasks",
        "dlq list --json",
        *(f"{what} {name}" for what in ("status", "dlq show") for name in FAULTS),
    ],
)
def test_no_private_value_is_shown_whole(run: Run, where: str) -> None:
    """Neither the number (in any form), the address nor a parameter value appears in clear."""
    text = run.shown[where].lower()
    assert [value for value in PRIVATE if value.lower() in text] == []


def test_dead_letters_quote_the_echoes_masked(run: Run) -> None:
    """The entries keep what Engage said, with the echoed values in their masked form."""
    page, answer, sent = (run.shown[f"dlq show {name}"] for name in FAULTS)
    assert "Sign in to continue with 48*******07" in page
    assert "Invalid value 'J***@example.com'." in answer
    assert "Invalid value '***', '***'." in sent


def test_celery_logged_the_retry_with_the_error_masked(run: Run) -> None:
    """The worker log's retry line names Engage's error, its echoed values masked."""
    retries = [line for line in run.shown["worker log"].splitlines() if " retry: " in line]
    assert any("Failed while processing '***', '***'." in line for line in retries)


def test_flower_shows_the_failures_masked(run: Run) -> None:
    """Flower's exceptions are the dead letters, quoting Engage's echoes masked."""
    tasks = json.loads(run.shown["flower /api/tasks"])
    exceptions = " ".join(str(t.get("exception")) for t in tasks.values())
    assert "dead-lettered" in exceptions
    assert "J***@example.com" in exceptions
