"""The demo, chaos and bench start a Redis of their own and never touch one they did not start.

Each target runs as ``make`` runs it, in a shell that exports ``REDIS_URL``, ``CELERY_BROKER_URL``
and ``ENGAGE_BROKER_URL`` for another deployment (a bystander Redis this test starts, holding a
canary key). The bystander must end as it began. When something answers on the machine's
127.0.0.1:6379, it is watched by reading only: it may run no FLUSHDB or FLUSHALL meanwhile. The
demo also runs with ``redis-server`` hidden from ``PATH``: python3 is enough.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from tasks.cli.redis_server import RedisServer
from tests.support import machine_redis
from tests.support.environments import bare_env
from tests.support.hidden_programs import path_without

pytestmark = pytest.mark.process

REPOSITORY = Path(__file__).resolve().parents[2]
CANARY = f"engage-sms-test-canary:{uuid.uuid4().hex}"
#: The demo, chaos and bench each take well under a minute; two cores are shared.
TARGET_TIMEOUT = 240


@pytest.fixture
def bystander(tmp_path: Path) -> Iterator[redis.Redis]:
    """Someone else's Redis (started here): one canary key, nothing else."""
    server = RedisServer(tmp_path / "bystander", persistent=False).start()
    client = redis.Redis.from_url(server.url)
    client.set(CANARY, "untouched")
    try:
        yield client
    finally:
        client.close()
        server.stop()


@pytest.fixture
def machine_watch() -> Iterator[Callable[[], None]]:
    """A read-only watch on 127.0.0.1:6379 if something answers there (nothing is written)."""
    with machine_redis.machine_watch() as check:
        yield check


def _shell_env(bystander: redis.Redis, **env: str) -> dict[str, str]:
    """A user's shell: the package's variables point at the bystander."""
    port = bystander.connection_pool.connection_kwargs["port"]
    url = f"redis://127.0.0.1:{port}/0"
    return bare_env(REDIS_URL=url, CELERY_BROKER_URL=url, ENGAGE_BROKER_URL=url, **env)


def _run(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=TARGET_TIMEOUT, check=False
    )
    assert result.returncode == 0, f"{argv[1:3]} failed:\n{result.stdout[-3000:]}{result.stderr}"
    return result


def _assert_untouched(bystander: redis.Redis, machine_check: Callable[[], None]) -> None:
    assert bystander.get(CANARY) == b"untouched"
    assert bystander.dbsize() == 1, "something wrote to a Redis it did not start"
    machine_check()


def test_demo_runs_on_its_own_redis_without_redis_server(
    bystander: redis.Redis, machine_watch: Callable[[], None], tmp_path: Path
) -> None:
    """make demo passes with no redis-server on PATH, and writes nothing to the shell's Redis."""
    hidden = path_without(("redis-server",), tmp_path / "bin")
    assert shutil.which("redis-server", path=hidden) is None
    demo = str(Path(sys.executable).with_name("engage-sms"))
    result = _run([demo, "demo"], _shell_env(bystander, PATH=hidden), tmp_path)
    assert "demo OK: sent once, unknown recipient dead-lettered" in result.stdout
    assert "a throwaway server of the demo's own" in result.stdout
    _assert_untouched(bystander, machine_watch)


def test_chaos_and_bench_run_on_their_own_redis(
    bystander: redis.Redis, machine_watch: Callable[[], None], tmp_path: Path
) -> None:
    """A small chaos run and bench's enqueue phase leave the shell's Redis and 6379 as they were."""
    env = _shell_env(bystander)
    chaos = _run(
        [sys.executable, str(REPOSITORY / "scripts/chaos.py"), "--sends", "20", "--kills", "0"],
        env,
        tmp_path,
    )
    assert "duplicates:            0" in chaos.stdout
    bench_path = {"PYTHONPATH": str(REPOSITORY)}  # ``make bench`` runs it from the repository
    bench = [sys.executable, "-m", "benchmarks", "--phases", "4"]
    result = _run([*bench, "--enqueues", "40", "--warmup", "10"], env | bench_path, tmp_path)
    assert "enqueue latency, median" in result.stdout
    _assert_untouched(bystander, machine_watch)


def test_the_machine_watch_sees_a_flush_and_writes_nothing(real_redis: redis.Redis) -> None:
    """The 6379 watch, on a Redis of the tests: silent while keys come and go, loud on a flush."""
    real_redis.flushdb()
    real_redis.set("someone-elses-data", "1")
    url = "redis://{host}:{port}/{db}".format(**real_redis.connection_pool.connection_kwargs)
    with machine_redis.machine_watch(url) as check:
        real_redis.delete("someone-elses-data")  # its owner's keys may go: no alarm
        check()
        assert real_redis.keys("*") == []  # the watch wrote nothing
        real_redis.flushdb()
        with pytest.raises(AssertionError, match="ran 1 FLUSHDB/FLUSHALL"):
            check()
