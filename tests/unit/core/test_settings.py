"""Settings from the environment: defaults, and errors that name the variable."""

from __future__ import annotations

import pytest

from tasks.core.errors import ConfigurationError
from tasks.core.settings import basic_auth_problem, load_settings

BASE = {
    "ENGAGE_BASE_URL": "https://tenant.example/api/rest/v19/",
    "ENGAGE_USERNAME": "api@example.com",
    "ENGAGE_PASSWORD": "secret",
}


def test_defaults_point_at_local_redis() -> None:
    """Broker and state default to the local Redis; results are off."""
    settings = load_settings(BASE)
    assert settings.broker_url == "redis://127.0.0.1:6379/0"
    assert settings.redis_url == settings.broker_url
    assert settings.result_backend is None
    assert settings.require_engage().base_url == "https://tenant.example/api/rest/v19"


def session_redis_url_defaults_to_the_broker() -> None:
    """REDIS_URL follows CELERY_BROKER_URL unless set."""
    settings = load_settings({**BASE, "CELERY_BROKER_URL": "redis://10.0.0.5:6380/2"})
    assert settings.redis_url == "redis://10.0.0.5:6380/2"


@pytest.mark.parametrize("missing", ["ENGAGE_BASE_URL", "ENGAGE_USERNAME", "ENGAGE_PASSWORD"])
def test_missing_required_setting_is_named(missing: str) -> None:
    """Each required variable is named when absent."""
    env = {k: v for k, v in BASE.items() if k != missing}
    with pytest.raises(ConfigurationError, match=f"{missing}: is not set"):
        load_settings(env)


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("ENGAGE_BASE_URL", "tenant.example/api", "must be a URL"),
        ("ENGAGE_READ_TIMEOUT", "soon", "must be a number"),
        ("ENGAGE_READ_TIMEOUT", "0", "at least 0.1"),
        ("ENGAGE_TRANSPORT", "grpc", "one of rest, soap"),
        ("ENGAGE_RETRY_MAX_ATTEMPTS", "2.5", "whole number"),
        ("CELERY_BROKER_URL", "http://x", "must be a URL"),
    ],
)
def test_malformed_setting_is_named(name: str, value: str, problem: str) -> None:
    """A malformed value is refused with its variable's name and the reason."""
    with pytest.raises(ConfigurationError, match=problem) as caught:
        load_settings({**BASE, name: value})
    assert caught.value.setting == name


def test_retry_delays_must_fit_the_visibility_timeout() -> None:
    """A countdown past the Redis visibility timeout would duplicate tasks: refused."""
    with pytest.raises(ConfigurationError) as caught:
        load_settings({**BASE, "ENGAGE_VISIBILITY_TIMEOUT": "600"})
    assert caught.value.setting == "ENGAGE_VISIBILITY_TIMEOUT"


def test_password_is_not_in_the_repr() -> None:
    """Printing the settings never shows the password."""
    assert "secret" not in repr(load_settings(BASE))


def test_key_retention_covers_the_retry_window_plus_a_day() -> None:
    """Idempotency records outlive every retry by at least 24 h."""
    settings = load_settings(BASE)
    assert settings.key_retention >= settings.retry.max_total + settings.retry.max_delay + 86400


def test_metrics_listen_on_this_machine_by_default() -> None:
    """Without ENGAGE_METRICS_ADDRESS the metrics endpoints listen on 127.0.0.1."""
    assert load_settings(BASE).metrics_address == "127.0.0.1"


def test_metrics_address_is_configurable() -> None:
    """ENGAGE_METRICS_ADDRESS opens the endpoints to other hosts (a scraper elsewhere)."""
    settings = load_settings({**BASE, "ENGAGE_METRICS_ADDRESS": "0.0.0.0"})  # noqa: S104
    assert settings.metrics_address == "0.0.0.0"  # noqa: S104


@pytest.mark.parametrize("value", ["admin:pw", "admin:pw,ops:p:w", "a:b c"])
def test_flower_login_lists_are_accepted(value: str) -> None:
    """user:password, several comma-separated; a password may hold ':' and spaces."""
    assert basic_auth_problem(value) is None


@pytest.mark.parametrize(
    "value", [None, "", "  ", "admin", "admin:", ":pw", "admin:pw,", "admin:pw, ops:pw"]
)
def test_flower_login_lists_without_user_or_password_are_refused(value: str | None) -> None:
    """Empty, or an entry with no user, no password or spaces around it (as Flower splits)."""
    assert basic_auth_problem(value) is not None


def test_flower_login_problem_never_quotes_the_password() -> None:
    """The problem names the entry by position: what it says may be printed."""
    problem = basic_auth_problem("admin:s3cret,guest")
    assert problem is not None
    assert "s3cret" not in problem
    assert "entry 2" in problem
