"""What a worker refuses at start, with one line and before it takes a message."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.environments import NOWHERE_ENGAGE_URL, OFFLINE_ENV, child_env

pytestmark = pytest.mark.process

#: A refused worker exits at once; an accepted one would keep retrying the unreachable broker.
START_LIMIT = 60.0
#: gevent's own warning (two lines) when Celery's `-P gevent` patches after ssl was imported.
GEVENT_WARNING = ("MonkeyPatchWarning: ", "gevent.monkey.patch_all()")


def run_worker(*options: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``celery -A tasks worker`` with ``options``, offline; returns once it exits."""
    argv = [sys.executable, "-m", "celery", "-A", "tasks", "worker", "--loglevel", "INFO"]
    return subprocess.run(
        [*argv, *options],
        env=child_env(OFFLINE_ENV, ENGAGE_BASE_URL=NOWHERE_ENGAGE_URL, **env),
        capture_output=True,
        text=True,
        timeout=START_LIMIT,
        check=False,
    )


def refusal(result: subprocess.CompletedProcess[str], *, besides: tuple[str, ...] = ()) -> str:
    """The one line a refused worker printed (AssertionError unless it exited so).

    ``besides``: texts of other programs' lines that may come before it.
    """
    lines = [
        line
        for line in result.stderr.splitlines()
        if line.strip() and not any(text in line for text in besides)
    ]
    assert result.returncode != 0, result.stderr[-2000:]
    assert len(lines) == 1, result.stderr[-2000:]
    assert lines[0].startswith("engage-sms: worker refused: "), lines
    return lines[0]


def test_the_upgrade_worker_on_celery_is_refused() -> None:
    """-Q celery (where callbacks waited by default) is refused: it would take and drop them."""
    line = refusal(run_worker("--pool", "solo", "-Q", "celery"))
    assert "-Q celery" in line


def test_the_callback_queue_is_refused() -> None:
    """A worker never consumes the callback queue, named or by default."""
    assert "engage.callbacks" in refusal(
        run_worker("-P", "solo", "-Q", "engage.urgent,engage.callbacks")
    )
    custom = run_worker("-P", "solo", "-Qapp.done", ENGAGE_ON_DONE_QUEUE="app.done")
    assert "app.done" in refusal(custom)


def test_another_deployments_lanes_are_refused() -> None:
    """A worker of prefix alpha never consumes beta's lanes (nor the default deployment's)."""
    line = refusal(
        run_worker("-P", "solo", "--queues=beta.normal,engage.bulk", ENGAGE_KEY_PREFIX="alpha")
    )
    assert "beta.normal,engage.bulk" in line
    assert "alpha.urgent,alpha.normal,alpha.bulk" in line


def test_gevent_is_refused_with_one_line() -> None:
    """A gevent pool is refused before ready, with one line that names the pool.

    Celery's command line patches for gevent before the app loads, and gevent may warn about it.
    """
    line = refusal(run_worker("--pool", "gevent"), besides=GEVENT_WARNING)
    assert "--pool gevent is not supported" in line
