"""Flower, started as documented (engage-sms flower), shows both tasks of a send, masked."""

from __future__ import annotations

import base64
import json
import re
import secrets
import socket
import string
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tasks.cli.demo import FLOWER_USER
from tasks.cli.local_stack import ManagedProcess
from tasks.core.send_options import lane_queues
from tasks.sandbox import Sandbox
from tests.integration.conftest import wait_for
from tests.support import sandbox as sandboxes
from tests.support.chromium import open_browser
from tests.support.environments import SANDBOX_CREDENTIALS, child_env
from tests.support.own_redis import session_redis_url
from tests.support.processes import listening_addresses, run_module, start_worker_and_flower
from tests.support.real_redis import require_redis

pytestmark = pytest.mark.integration

BROKER = session_redis_url(13)
MOBILE = "+48 505 606 707"
DIGITS = "48505606707"
MASKED = "48*******07"
#: Screenshots the browser test leaves for a person to look at (not removed after the run).
SCREENSHOTS = Path(__file__).resolve().parents[2] / ".run" / "screenshots"


@dataclass
class Stack:
    """A sandbox, a worker and Flower, all on one broker, and the one send made through them."""

    sandbox: Sandbox
    env: dict[str, str]
    flower_url: str
    flower_password: str
    metrics_url: str
    metrics_port: int
    flower_log: Path
    key: str = ""

    @property
    def lanes(self) -> tuple[str, ...]:
        """The lane queues of the stack's deployment (named by its key prefix)."""
        return tuple(lane_queues(self.env["ENGAGE_KEY_PREFIX"]).values())

    def flower(self, path: str, *, auth: bool = True) -> tuple[int, Any]:
        """GET a Flower path: (status, parsed JSON or None)."""
        request = urllib.request.Request(self.flower_url + path)  # noqa: S310  (local URL)
        if auth:
            token = base64.b64encode(f"{FLOWER_USER}:{self.flower_password}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as err:
            return err.code, None


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, session_sandbox: Sandbox) -> Iterator[Stack]:
    """Sandbox, worker (metrics on), Flower with basic auth; one send enqueued via the CLI."""
    require_redis(BROKER)
    logs: Path = tmp_path_factory.mktemp("flower")
    letters = "".join(secrets.choice(string.ascii_lowercase) for _ in range(12))
    flower_port, metrics_port = free_port(), free_port()
    password = secrets.token_urlsafe(12)
    processes: list[ManagedProcess] = []
    sandbox = sandboxes.fresh(session_sandbox)
    env = child_env(
        SANDBOX_CREDENTIALS,
        CELERY_BROKER_URL=BROKER,
        ENGAGE_BASE_URL=sandbox.base_url,
        ENGAGE_KEY_PREFIX=f"flower-test-{letters}",
        ENGAGE_METRICS_PORT=str(metrics_port),
    )
    env.pop("ENGAGE_SCHEDULE_FILE", None)
    try:
        _, flower = start_worker_and_flower(
            env,
            logs,
            name=f"flower-{letters}",
            password=password,
            port=flower_port,
            started=processes,
        )
        stack = Stack(
            sandbox=sandbox,
            env=env,
            flower_url=f"http://127.0.0.1:{flower_port}",
            flower_password=password,
            metrics_url=f"http://127.0.0.1:{metrics_port}/metrics",
            metrics_port=metrics_port,
            flower_log=flower.log_path,
        )
        # Flower learns of tasks from events: send only once it listens to them.
        wait_for(lambda: stack.flower("/api/workers")[0] == 200, 30, "Flower's API")
        stack.key = f"flower-{letters}"
        enqueue(env, stack.key)
        yield stack
    finally:
        for process in reversed(processes):
            process.stop()


def enqueue(env: dict[str, str], key: str) -> None:
    """``engage-sms send`` in its own process: this one's Celery app may be configured already."""
    run_module(
        *("tasks.cli", "send", "--message-id", "23541", "--mobile", MOBILE),
        *("--param", "firstName=Ann", "--idempotency-key", key, "--wait", "30"),
        env=env,
        check=True,
    )


def flower_tasks(stack: Stack) -> dict[str, dict[str, Any]]:
    """Flower's tasks of this test's send, by task name."""
    status, tasks = stack.flower("/api/tasks")
    assert status == 200
    return {
        info.get("name"): info
        for info in (tasks or {}).values()
        if stack.key in str(info.get("args"))
    }


def test_flower_api_refuses_requests_without_credentials(stack: Stack) -> None:
    """Without basic auth Flower answers 401: it is never open."""
    assert stack.flower("/api/tasks", auth=False)[0] == 401


def test_flower_shows_both_tasks_with_the_mobile_masked(stack: Stack) -> None:
    """resolve_contact and send_single both appear, their arguments masked (48*******07)."""
    names = {"engage.resolve_contact", "engage.send_single"}

    def both() -> dict[str, dict[str, Any]] | None:
        tasks = flower_tasks(stack)
        return tasks if names <= set(tasks) else None

    found = wait_for(both, 30, "both tasks in Flower")
    for name in names:
        shown = f"{found[name].get('args')} {found[name].get('kwargs')}"
        assert MASKED in shown
        assert DIGITS not in shown
        assert "505 606 707" not in shown


def test_worker_metrics_count_the_send(stack: Stack) -> None:
    """With ENGAGE_METRICS_PORT the worker serves its counters, and the send was counted."""
    with urllib.request.urlopen(stack.metrics_url, timeout=5) as response:  # noqa: S310
        text = response.read().decode()
    sent = re.search(r'^engage_sms_sends_total\{outcome="sent"\} (\S+)$', text, re.MULTILINE)
    assert sent is not None
    assert float(sent.group(1)) >= 1


def test_worker_metrics_listen_on_loopback_only(stack: Stack) -> None:
    """Without ENGAGE_METRICS_ADDRESS the worker's endpoint is bound to 127.0.0.1 alone."""
    assert listening_addresses(stack.metrics_port) == {"127.0.0.1"}


def test_flower_listens_on_loopback_and_never_prints_its_password(stack: Stack) -> None:
    """engage-sms flower binds 127.0.0.1 by default; its output never holds the password."""
    port = int(stack.flower_url.rpartition(":")[2])
    assert listening_addresses(port) == {"127.0.0.1"}
    assert stack.flower_password not in stack.flower_log.read_text()


def test_flower_queue_lengths_list_every_lane(stack: Stack) -> None:
    """/api/queues/length answers for our transport's broker, with the three lanes."""
    status, body = stack.flower("/api/queues/length")
    assert status == 200, body
    names = {queue["name"] for queue in body["active_queues"]}
    assert set(stack.lanes) <= names


def test_flower_broker_page_shows_the_lanes_in_a_browser(stack: Stack, tmp_path: Path) -> None:
    """Flower's Broker page, in a real headless Chromium, names the broker and lists the lanes."""
    token = base64.b64encode(f"{FLOWER_USER}:{stack.flower_password}".encode()).decode()
    lanes = stack.lanes
    with open_browser() as browser:
        text = browser.visit(
            stack.flower_url + "/broker",
            headers={"Authorization": f"Basic {token}"},
            expect=("redis://", *lanes),
        )
        shot = browser.screenshot(SCREENSHOTS / "flower-broker.png")
    assert "Transport" not in text  # the broker's URI, not the module path of our transport
    assert stack.flower_password not in text
    assert shot.stat().st_size > 10_000
