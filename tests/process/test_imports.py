"""What importing and enqueueing load, seen from fresh interpreters (module caches cannot lie).

The layers keep their libraries to themselves: the Engage client works without Celery or Redis,
the stores without Celery or requests, the steps without Celery. A web process enqueues with
the broker and Redis settings only, beside a host application with its own Celery app.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.support.environments import bare_env
from tests.support.processes import run_python

pytestmark = pytest.mark.process

LOADED = """
import importlib, json, sys
importlib.import_module({module!r})
print(json.dumps(sorted(name for name in {libraries!r} if name in sys.modules)))
"""


@pytest.mark.parametrize(
    ("module", "libraries"),
    [
        ("tasks", ["celery", "kombu", "redis", "requests"]),
        ("tasks.engage", ["celery", "kombu", "redis"]),
        ("tasks.state", ["celery", "kombu", "requests"]),
        ("tasks.delivery.steps", ["celery", "kombu"]),
    ],
)
def test_a_layer_loads_none_of_the_libraries_above_it(module: str, libraries: list[str]) -> None:
    """Importing the layer in a fresh interpreter leaves those libraries out of sys.modules."""
    code = LOADED.format(module=module, libraries=libraries)
    assert json.loads(run_python(code, env=bare_env()).stdout) == []


def test_the_check_sees_a_library_that_is_loaded() -> None:
    """The same check reports celery after importing the worker layer."""
    code = LOADED.format(module="tasks.worker.app", libraries=["celery"])
    assert json.loads(run_python(code, env=bare_env()).stdout) == ["celery"]


#: Reads the queue of ``app`` on its broker: the ids of the task messages there.
DRAIN = """
def queued(app, queue_name):
    ids = []
    with app.connection_for_read() as connection:
        queue = connection.SimpleQueue(queue_name, no_ack=True)
        try:
            while True:
                ids.append(queue.get_nowait().headers["id"])
        except queue.Empty:
            return ids
        finally:
            queue.close()
"""

ENQUEUE = (
    DRAIN
    + """
import json
from tasks import send_prepared_sms
from tasks.worker.app import app, engage_settings
handle = send_prepared_sms(23541, mobile="+48505606707", idempotency_key="web-1")
print(json.dumps({
    "engage": engage_settings().engage,
    "created": handle.created,
    "queued": queued(app, "engage.normal"),
    "chain_end": handle.task_id,
}))
"""
)


def test_enqueue_needs_no_engage_setting(process_redis_url: str) -> None:
    """With only the broker and Redis configured, send_prepared_sms claims and publishes."""
    env = bare_env(CELERY_BROKER_URL="memory://", REDIS_URL=process_redis_url)
    out = json.loads(run_python(ENQUEUE, env=env).stdout)
    assert out["engage"] is None
    assert out["created"] is True
    (first,) = out["queued"]
    assert first != out["chain_end"]


HOST_CONFIG = """
broker_url = "memory://host"
task_default_queue = "host-jobs"
host_marker = "set by the host"
"""
HOST_APP = """
from celery import Celery

app = Celery("host")
app.config_from_object("celeryconfig")
"""
BESIDE_HOST = (
    DRAIN
    + """
import json
import celery
import host
assert host.app.conf.host_marker == "set by the host"  # the host is configured first

from tasks import send_prepared_sms
from tasks.worker.app import app as ours

handle = send_prepared_sms(23541, mobile="+48505606707", idempotency_key="host-1")
print(json.dumps({
    "current_app": celery.current_app.main,  # a proxy: compared by the app's name
    "host_marker": host.app.conf.get("host_marker"),
    "host_queue": host.app.conf.task_default_queue,
    "host_broker": host.app.conf.broker_url,
    "our_marker": ours.conf.get("host_marker"),
    "our_queue": ours.conf.task_default_queue,
    "our_broker": ours.conf.broker_write_url,
    "on_our_queue": queued(ours, "engage.normal"),
    # The host's broker may be one that is not running here: asked only when in memory.
    "on_host_queue": (
        queued(host.app, "host-jobs") if host.app.conf.broker_url.startswith("memory") else None
    ),
}))
"""
)


def beside_a_host(tmp_path: Path, redis_url: str, **host_env: str) -> dict[str, Any]:
    """Enqueue from a host application's directory, with its own celeryconfig and Celery app."""
    (tmp_path / "celeryconfig.py").write_text(textwrap.dedent(HOST_CONFIG))
    (tmp_path / "host.py").write_text(textwrap.dedent(HOST_APP))
    env = bare_env(ENGAGE_BROKER_URL="memory://", REDIS_URL=redis_url, **host_env)
    result = run_python(BESIDE_HOST, env=env, cwd=tmp_path)
    return dict(json.loads(result.stdout))


def test_a_host_app_keeps_its_config_and_its_place(tmp_path: Path, process_redis_url: str) -> None:
    """The host's app still reads its celeryconfig and is still Celery's current app."""
    found = beside_a_host(tmp_path, process_redis_url)
    assert found["current_app"] == "host"
    assert (found["host_marker"], found["host_queue"]) == ("set by the host", "host-jobs")


def test_enqueue_beside_a_host_uses_this_package_settings(
    tmp_path: Path, process_redis_url: str
) -> None:
    """The send goes to this package's queue; nothing of the host's config leaks into ours."""
    found = beside_a_host(tmp_path, process_redis_url)
    assert found["our_marker"] is None
    assert found["our_queue"] == "engage.normal"
    assert len(found["on_our_queue"]) == 1
    assert found["on_host_queue"] == []


def test_a_host_app_keeps_its_broker_url(tmp_path: Path, process_redis_url: str) -> None:
    """With ENGAGE_BROKER_URL, the host's broker_url from its celeryconfig is left alone."""
    assert beside_a_host(tmp_path, process_redis_url)["host_broker"] == "memory://host"


def test_a_host_celery_broker_url_does_not_redirect_this_package(
    tmp_path: Path, process_redis_url: str
) -> None:
    """The host's CELERY_BROKER_URL (Celery applies it to every app) does not move our sends."""
    found = beside_a_host(tmp_path, process_redis_url, CELERY_BROKER_URL="redis://127.0.0.1:1/0")
    assert len(found["on_our_queue"]) == 1
    assert found["our_broker"] == "memory://"
