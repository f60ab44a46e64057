"""Every configuration the tests hand to :func:`load_settings` and to child processes.

Production defaults are minutes (Engage asks for retries after 30 s and 15 min); tests use the
fast profiles below. Child processes get ``os.environ`` plus one of these, so a variable set here
always wins over the developer's shell.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from tasks.core.settings import Settings, load_settings
from tests.support.own_redis import session_redis_url

SANDBOX_USER = "api@example.com"
SANDBOX_PASSWORD = "sandbox-password"
#: The sandbox's credentials, as the package reads them.
SANDBOX_CREDENTIALS = {"ENGAGE_USERNAME": SANDBOX_USER, "ENGAGE_PASSWORD": SANDBOX_PASSWORD}

#: An Engage address where nothing listens (TCP port 9): a call there is refused at once.
NOWHERE_ENGAGE_URL = "http://127.0.0.1:9/api/rest/v19"
#: A Redis address where nothing listens, as broker or state store.
NOWHERE_REDIS_URL = "redis://127.0.0.1:9/0"

#: Every URL below is a database of the session's own Redis (tests.support.own_redis).

#: Redis database the integration tests own: their workers' broker and state; flushed per test.
TEST_REDIS_URL = session_redis_url(12)
#: Redis database tests without workers may use; each test uses and deletes keys of its own.
REAL_REDIS_DB = 14
REAL_REDIS_URL = session_redis_url(REAL_REDIS_DB)
#: Redis database of the fresh-interpreter tests, which run the package as configured (default
#: key prefix): flushed before and after each test.
PROCESS_REDIS_URL = session_redis_url(9)

#: The pytest process itself: it enqueues (to the memory broker in unit tests, to the test
#: database in integration tests) and reads state; it never calls Engage through these settings.
PYTEST_PROCESS_ENV = {
    "CELERY_BROKER_URL": TEST_REDIS_URL,
    "ENGAGE_BASE_URL": NOWHERE_ENGAGE_URL,
    **SANDBOX_CREDENTIALS,
}

#: Steps run in this process: one-second timeouts, retries a tenth of a second apart.
IN_PROCESS_ENV = {
    **SANDBOX_CREDENTIALS,
    "ENGAGE_CONNECT_TIMEOUT": "1",
    "ENGAGE_READ_TIMEOUT": "1",
    "ENGAGE_LEASE_MARGIN": "1",
    "ENGAGE_RETRY_BASE_DELAY": "0.1",
    "ENGAGE_RETRY_BACKOFF": "2",
    "ENGAGE_RETRY_MAX_DELAY": "1",
    "ENGAGE_RETRY_MAX_TOTAL": "60",
    "ENGAGE_UNKNOWN_RECIPIENT_DELAY": "0.1",
    "ENGAGE_VISIBILITY_TIMEOUT": "30",
    "ENGAGE_RATE_LIMIT": "0",
}

#: Real workers under test: the test database as broker, retries within a second or two.
WORKER_ENV = {
    "CELERY_BROKER_URL": TEST_REDIS_URL,
    **SANDBOX_CREDENTIALS,
    "ENGAGE_CONNECT_TIMEOUT": "1",
    "ENGAGE_READ_TIMEOUT": "2",
    "ENGAGE_LEASE_MARGIN": "1",
    "ENGAGE_RETRY_BASE_DELAY": "0.2",
    "ENGAGE_RETRY_BACKOFF": "2",
    "ENGAGE_RETRY_MAX_DELAY": "1",
    "ENGAGE_UNKNOWN_RECIPIENT_DELAY": "0.2",
    "ENGAGE_VISIBILITY_TIMEOUT": "10",
}

#: A child process that reads the configuration and never connects anywhere.
OFFLINE_ENV = {
    "CELERY_BROKER_URL": NOWHERE_REDIS_URL,
    "ENGAGE_BASE_URL": NOWHERE_ENGAGE_URL,
    **SANDBOX_CREDENTIALS,
}

#: Prefixes of the variables the package reads (besides requests' proxy and CA variables).
PACKAGE_PREFIXES = ("ENGAGE_", "CELERY_", "REDIS_URL")


def make_settings(base_url: str = NOWHERE_ENGAGE_URL, **env: str) -> Settings:
    """Settings for steps run in this process: :data:`IN_PROCESS_ENV` unless ``env`` says else."""
    return load_settings({**IN_PROCESS_ENV, "ENGAGE_BASE_URL": base_url, **env})


def child_env(*profiles: Mapping[str, str], **env: str) -> dict[str, str]:
    """This process's environment, then ``profiles`` in order, then ``env``: for a child."""
    merged = dict(os.environ)
    for profile in profiles:
        merged.update(profile)
    merged.update(env)
    return merged


def bare_env(**env: str) -> dict[str, str]:
    """This process's environment without any variable of the package, plus ``env``."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith(PACKAGE_PREFIXES)}
    return {**kept, **env}
