"""The Celery configuration as a fresh process reads it (it is read once per process)."""

from __future__ import annotations

import json

import pytest

from tasks.worker.transport import SENTINEL_TRANSPORT, TRANSPORT
from tests.support.environments import NOWHERE_REDIS_URL, OFFLINE_ENV, child_env
from tests.support.processes import run_python

pytestmark = pytest.mark.process


def test_celeryconfig_uses_the_package_transport_for_plain_redis_brokers_only() -> None:
    """redis:// gets this transport; rediss:// (TLS) and other brokers keep kombu's choice."""
    code = "import celeryconfig; print(getattr(celeryconfig, 'broker_transport', None))"
    chosen = {
        url: run_python(
            code, env=child_env(OFFLINE_ENV, CELERY_BROKER_URL=url, REDIS_URL=NOWHERE_REDIS_URL)
        ).stdout.strip()
        for url in (
            "redis://127.0.0.1:6379/0",
            "rediss://127.0.0.1:6380/0",
            "amqp://guest@127.0.0.1//",
        )
    }
    assert chosen == {
        "redis://127.0.0.1:6379/0": TRANSPORT,
        "rediss://127.0.0.1:6380/0": "None",
        "amqp://guest@127.0.0.1//": "None",
    }


def test_importing_the_configuration_decides_nothing_about_the_process() -> None:
    """Read by a process whose command line looks like a refused worker's, it neither exits
    nor refuses: worker, beat and Flower decide in Celery's signals, not at import."""
    code = (
        "import sys; sys.argv = ['/usr/local/bin/celery', 'worker', '--pool', 'gevent', "
        "'-Q', 'celery']\n"
        "import tasks.worker.config as config; print(config.task_default_queue)"
    )
    result = run_python(code, env=child_env(OFFLINE_ENV), check=False)
    assert (result.returncode, result.stdout.strip()) == (0, "engage.normal"), result.stderr


def test_a_malformed_setting_reaches_whoever_reads_the_settings() -> None:
    """Outside a celery program the configuration loads, and reading the settings raises the
    error naming the variable (a web process sees it at its first send, as before)."""
    code = (
        "from tasks.core.errors import ConfigurationError\n"
        "from tasks.worker.app import app, engage_settings\n"
        "print(app.conf.broker_write_url)\n"
        "try:\n    engage_settings()\nexcept ConfigurationError as err:\n    print(err.setting)"
    )
    env = child_env(OFFLINE_ENV, ENGAGE_READ_TIMEOUT="soon")
    result = run_python(code, env=env, check=False)
    assert result.stdout.split() == ["memory://", "ENGAGE_READ_TIMEOUT"], result.stderr


SENTINELS = "sentinel://127.0.0.1:26379;sentinel://127.0.0.1:26380"
#: The scheme table of kombu before and after this package's app is configured on Sentinel, and
#: the transport its connection names after moving to the second sentinel.
ALIASES = f"""
import json
from kombu import transport
before = dict(transport.TRANSPORT_ALIASES)
import tasks
from tasks.worker.app import app
chosen = app.conf.broker_transport
connection = app.connection_for_write()
connection.switch({SENTINELS.split(";")[1]!r})
print(json.dumps([before == dict(transport.TRANSPORT_ALIASES), chosen, connection.transport_cls]))
"""


def test_a_sentinel_broker_leaves_kombus_scheme_table_to_the_host_app() -> None:
    """Configured on sentinel://, the app keeps its transport through a switch of sentinel
    without renaming kombu's ``sentinel`` scheme for every other app of the process."""
    env = child_env(
        OFFLINE_ENV,
        ENGAGE_BROKER_URL=SENTINELS,
        REDIS_URL=NOWHERE_REDIS_URL,
        ENGAGE_REDIS_MASTER_NAME="primary",
    )
    result = run_python(ALIASES, env=env, check=False)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [True, SENTINEL_TRANSPORT, SENTINEL_TRANSPORT]
