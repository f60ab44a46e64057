"""``engage-sms doctor`` against a real sandbox: each failure is named, with its fix."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tasks.cli import main
from tasks.cli.doctor import Check, run_checks
from tasks.cli.local_stack import ManagedProcess, start_worker
from tasks.cli.redis_server import RedisServer
from tasks.core.urls import redact_url
from tasks.sandbox import Sandbox
from tasks.state.keys import RedisKeys
from tasks.state.rate_limit import RateLimiter
from tests.support.environments import (
    NOWHERE_ENGAGE_URL,
    NOWHERE_REDIS_URL,
    SANDBOX_CREDENTIALS,
    TEST_REDIS_URL,
    child_env,
)

WRONG_PASSWORD = "not-the-sandbox-password"


def environ(base_url: str, broker: str = TEST_REDIS_URL, **extra: str) -> dict[str, str]:
    """A complete configuration for the doctor."""
    return {
        **SANDBOX_CREDENTIALS,
        "CELERY_BROKER_URL": broker,
        "ENGAGE_BASE_URL": base_url,
        "ENGAGE_CONNECT_TIMEOUT": "1",
        "ENGAGE_READ_TIMEOUT": "2",
        **extra,
    }


def by_name(checks: list[Check]) -> dict[str, Check]:
    """The checks keyed by name."""
    return {check.name: check for check in checks}


def printed(checks: list[Check]) -> str:
    """Everything the doctor would print."""
    return "\n".join(check.line() for check in checks)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of this test's own, as a deployment should run it: append-only, noeviction."""
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


def test_good_configuration_passes_every_check(sandbox: Sandbox, own_redis: RedisServer) -> None:
    """Settings, Redis (no eviction, append-only), budget, broker and Engage are all OK."""
    checks = run_checks(environ(sandbox.base_url, broker=own_redis.url))
    assert [(c.name, c.ok) for c in checks] == [
        ("settings", True),
        ("redis", True),
        ("eviction", True),
        ("persistence", True),
        ("rate budget", True),
        ("broker", True),
        ("engage", True),
        ("callbacks", True),
    ]
    assert "API version 19.0" in by_name(checks)["engage"].detail
    assert "refuses writes" in by_name(checks)["eviction"].detail


@pytest.mark.parametrize("policy", ["allkeys-lru", "volatile-ttl"])
def test_an_evicting_redis_fails_with_its_fix(
    sandbox: Sandbox, own_redis: RedisServer, policy: str
) -> None:
    """Any policy but noeviction may drop a sent record: FAIL, naming the fix."""
    redis.Redis.from_url(own_redis.url).config_set("maxmemory-policy", policy)
    eviction = by_name(run_checks(environ(sandbox.base_url, broker=own_redis.url)))["eviction"]
    assert eviction.ok is False
    assert f"maxmemory-policy {policy}" in eviction.detail
    assert "sent again" in eviction.detail
    assert "maxmemory-policy noeviction" in eviction.fix


def test_a_redis_without_persistence_says_what_a_restart_does(
    sandbox: Sandbox, redis_url: str
) -> None:
    """No append-only file and no snapshots (the test suite's Redis): WARN, and why."""
    persistence = by_name(run_checks(environ(sandbox.base_url, broker=redis_url)))["persistence"]
    assert (persistence.ok, persistence.warning) == (True, True)
    assert persistence.line().startswith("WARN persistence: ")
    assert "a restart forgets the whole ledger" in persistence.detail
    assert "appendonly yes" in persistence.fix


def test_a_budget_mismatch_is_shown(sandbox: Sandbox, own_redis: RedisServer) -> None:
    """A worker stored 10/s; this configuration says 40/s: MISMATCH, and how to change it."""
    keys = RedisKeys("engage")
    client = redis.Redis.from_url(own_redis.url)
    RateLimiter(client, keys=keys, rate=10, burst=1).agree()
    checks = run_checks(environ(sandbox.base_url, broker=own_redis.url, ENGAGE_RATE_LIMIT="40"))
    budget = by_name(checks)["rate budget"]
    assert budget.ok is False
    assert "MISMATCH" in budget.detail
    assert "10/s" in budget.detail
    assert "40/s" in budget.detail
    assert keys.rate_budget in budget.fix


def test_wrong_password_is_named_as_such_and_not_printed(sandbox: Sandbox) -> None:
    """A 403 says Engage refused ENGAGE_USERNAME/ENGAGE_PASSWORD; the password never shows."""
    checks = run_checks(environ(sandbox.base_url, ENGAGE_PASSWORD=WRONG_PASSWORD))
    engage = by_name(checks)["engage"]
    assert engage.ok is False
    assert "Engage refused ENGAGE_USERNAME/ENGAGE_PASSWORD (HTTP 403)" in engage.detail
    assert "check the API user's password" in engage.fix
    assert WRONG_PASSWORD not in printed(checks)


def test_wrong_path_prefix_is_named(sandbox: Sandbox) -> None:
    """A 404 points at the path prefix and version in ENGAGE_BASE_URL."""
    wrong = sandbox.base_url.replace("/api/rest/v19", "/api/rest/v18")
    engage = by_name(run_checks(environ(wrong)))["engage"]
    assert engage.ok is False
    assert "404" in engage.detail
    assert "path prefix and version in ENGAGE_BASE_URL" in engage.fix


def test_unreachable_host_names_host_and_port(sandbox: Sandbox) -> None:
    """A refused connection names host:port and asks to check them in ENGAGE_BASE_URL."""
    engage = by_name(run_checks(environ(NOWHERE_ENGAGE_URL)))["engage"]
    assert engage.ok is False
    assert "127.0.0.1:9" in engage.detail
    assert "host and port in ENGAGE_BASE_URL" in engage.fix


def test_missing_variable_is_named_and_later_checks_skipped() -> None:
    """A settings error names the variable; the checks that need settings are skipped."""
    env = environ(NOWHERE_ENGAGE_URL)
    del env["ENGAGE_USERNAME"]
    checks = run_checks(env)
    assert checks[0].ok is False
    assert "ENGAGE_USERNAME" in checks[0].detail
    assert [c.ok for c in checks[1:]] == [None, None, None]


def test_unreachable_redis_fails_redis_and_broker(sandbox: Sandbox) -> None:
    """A Redis nobody listens on fails both the Redis and the broker check."""
    found = by_name(run_checks(environ(sandbox.base_url, broker=NOWHERE_REDIS_URL)))
    assert (found["redis"].ok, found["broker"].ok) == (False, False)
    assert "REDIS_URL" in found["redis"].fix
    assert "CELERY_BROKER_URL" in found["broker"].fix


def test_broker_fix_names_engage_broker_url_when_that_is_the_one_in_use(sandbox: Sandbox) -> None:
    """With ENGAGE_BROKER_URL set, the broker's fix names it, not Celery's variable."""
    env = environ(sandbox.base_url, broker=TEST_REDIS_URL, ENGAGE_BROKER_URL=NOWHERE_REDIS_URL)
    broker = by_name(run_checks(env))["broker"]
    assert broker.ok is False
    assert "ENGAGE_BROKER_URL" in broker.fix
    assert "CELERY_BROKER_URL" not in broker.fix


def test_settings_fix_points_at_the_environment_not_a_dotenv_nobody_reads() -> None:
    """A settings error's fix names the variable and the README, never a .env file."""
    env = environ(NOWHERE_ENGAGE_URL, ENGAGE_READ_TIMEOUT="soon")
    (settings, *_) = run_checks(env)
    assert "ENGAGE_READ_TIMEOUT" in settings.fix
    assert ".env" not in settings.fix


def test_cli_doctor_exits_4_when_redis_does_not_answer(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Redis down is exit 4, as for every other command, not 1."""
    for name, value in environ(sandbox.base_url, broker=NOWHERE_REDIS_URL).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("ENGAGE_BROKER_URL", raising=False)
    assert main(["doctor"]) == 4
    assert "FAIL redis" in capsys.readouterr().out


def test_callback_queue_without_consumer_is_a_warning(sandbox: Sandbox, redis_url: str) -> None:
    """No worker consumes ENGAGE_ON_DONE_QUEUE: WARN with the fix; the doctor still passes."""
    env = environ(sandbox.base_url, broker=redis_url, ENGAGE_ON_DONE_QUEUE="nobody-reads-this")
    callbacks = by_name(run_checks(env))["callbacks"]
    assert callbacks.warning
    assert callbacks.ok is True
    assert "no worker answering on this broker consumes 'nobody-reads-this'" in callbacks.detail
    assert callbacks.line().startswith("WARN callbacks:")


def test_callback_queue_with_a_consumer_is_ok(
    sandbox: Sandbox, redis_url: str, tmp_path: Path
) -> None:
    """A worker on the broker consuming the callback queue (the host app's, as in tests): OK."""
    queue = "host-callbacks"
    env = child_env(environ(sandbox.base_url, broker=redis_url, ENGAGE_ON_DONE_QUEUE=queue))
    env.pop("REDIS_URL", None)
    env.pop("ENGAGE_BROKER_URL", None)
    # Not this package's worker: it refuses to consume the callback queue.
    argv = [sys.executable, "-m", "celery", "-A", "tests.support.callback_app", "worker"]
    argv += ["--pool", "solo", "-Q", queue, "-n", "doctor-host@%h", "--loglevel", "INFO"]
    worker = ManagedProcess(argv, env=env, log_path=tmp_path / "w.log")
    start_worker(worker)
    try:
        callbacks = by_name(run_checks(env))["callbacks"]
    finally:
        worker.stop()
    assert (callbacks.ok, callbacks.warning) == (True, False)
    assert "is consumed by doctor-host@" in callbacks.detail


def test_bad_schedule_file_fails_the_schedules_check(sandbox: Sandbox, tmp_path: Path) -> None:
    """With ENGAGE_SCHEDULE_FILE set, an invalid file is reported by name and field."""
    path = tmp_path / "schedules.toml"
    path.write_text('[[schedule]]\nname = "n"\nevery = 5\nmessage_id = 1\n')
    found = by_name(run_checks(environ(sandbox.base_url, ENGAGE_SCHEDULE_FILE=str(path))))
    assert found["schedules"].ok is False
    assert "schedule 'n': every" in found["schedules"].detail


def test_redact_url_hides_the_password() -> None:
    """A URL's password is shown as ***, the rest as given."""
    assert redact_url("redis://:s3cret@redis:6379/0") == "redis://:***@redis:6379/0"
    assert redact_url("amqp://user:s3cret@mq/") == "amqp://user:***@mq/"
    assert redact_url("redis://redis:6379/0") == "redis://redis:6379/0"


def test_cli_doctor_exits_1_and_prints_fail(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``engage-sms doctor`` prints FAIL with the fix and exits 1 when a check fails."""
    for name, value in environ(sandbox.base_url, ENGAGE_PASSWORD=WRONG_PASSWORD).items():
        monkeypatch.setenv(name, value)
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "FAIL engage: Engage refused ENGAGE_USERNAME/ENGAGE_PASSWORD (HTTP 403)" in out
    assert WRONG_PASSWORD not in out
