"""``engage-sms doctor``: check the configuration end to end, each failure with its fix.

Settings, the schedule file, Redis, the broker and Engage (reachability and credentials via
``system/getApiVersion``), then whether any worker consumes the completion callbacks' queue.
Nothing here prints a password, not even one that was rejected.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import redis
from kombu.connection import Connection

from tasks.core.errors import (
    ConfigurationError,
    CredentialsRejected,
    EngageAPIError,
    EngageError,
    RequestNotSent,
    UnexpectedAnswer,
)
from tasks.core.masking import mask_text
from tasks.core.schedule_file import load_schedules
from tasks.core.settings import Settings, broker_variable, load_settings
from tasks.core.urls import redact_url
from tasks.engage import build_client
from tasks.state.clients import broker_transport_options, redis_client

#: The doctor waits this long (seconds) for any one answer, not the 35 s a send may wait.
TIMEOUT = 5.0
#: How long the doctor waits for workers to say which queues they consume.
CONSUMERS_TIMEOUT = 2.0


@dataclass(frozen=True)
class Check:
    """One check's verdict: ``ok`` None means it could not run (an earlier check failed).

    ``warning``: OK as far as the exit code goes, but worth a look (printed WARN).
    """

    name: str
    ok: bool | None
    detail: str
    fix: str = ""
    warning: bool = False

    def line(self) -> str:
        """How the check is printed."""
        status = "WARN" if self.warning else {True: "OK  ", False: "FAIL", None: "SKIP"}[self.ok]
        text = f"{status} {self.name}: {self.detail}"
        return f"{text}\n     fix: {self.fix}" if self.fix else text


def run_checks(environ: Mapping[str, str]) -> list[Check]:
    """Every check, in order; later checks are skipped when the settings do not load."""
    try:
        settings = load_settings(environ)
    except ConfigurationError as err:
        fix = f"set {err.setting} correctly in this process's environment (README: Configuration)"
        skipped = [
            Check(name, None, "needs valid settings") for name in ("redis", "broker", "engage")
        ]
        return [Check("settings", False, str(err), fix), *skipped]
    transport = "none: enqueue only" if settings.engage is None else settings.engage.transport
    checks = [Check("settings", True, f"loaded (transport {transport})")]
    if settings.schedule_file is not None:
        checks.append(check_schedules(settings))
    redis_check = check_redis(settings)
    checks.append(redis_check)
    if redis_check.ok:
        # What the ledger's Redis means for the promise (eviction, persistence, the budget).
        from tasks.cli.doctor_redis import redis_safety_checks  # noqa: PLC0415  (builds on Check)

        checks += redis_safety_checks(settings)
    checks.append(check_broker(settings, broker_variable(environ)))
    broker_ok = checks[-1].ok
    checks += _high_availability_checks(settings)
    checks.append(check_engage(settings))
    if broker_ok:
        checks.append(check_callback_consumers(settings))
    password = [] if settings.engage is None else [settings.engage.password]
    secrets = [*password, *_url_passwords(settings)]
    return [_scrubbed(check, secrets) for check in checks]


def _high_availability_checks(settings: Settings) -> list[Check]:
    # Imported here: it builds on Check, and runs only for sentinel:// URLs.
    from tasks.cli.doctor_sentinel import sentinel_checks  # noqa: PLC0415

    return sentinel_checks(settings)


def check_schedules(settings: Settings) -> Check:
    """ENGAGE_SCHEDULE_FILE parses and validates."""
    try:
        schedules = load_schedules(settings.schedule_file)
    except ConfigurationError as err:
        return Check("schedules", False, str(err), "correct the named schedule and field")
    return Check("schedules", True, f"{len(schedules)} schedule(s) in {settings.schedule_file}")


def check_redis(settings: Settings) -> Check:
    """REDIS_URL answers PING."""
    url = redact_url(settings.redis_url)
    try:
        client = redis_client(settings, socket_connect_timeout=TIMEOUT, socket_timeout=TIMEOUT)
        client.ping()
    except redis.RedisError as err:
        return Check(
            "redis",
            False,
            f"no answer from {url}: {type(err).__name__}: {err}",
            "start Redis, or point REDIS_URL (default: the broker's URL) at a running one",
        )
    return Check("redis", True, f"PING answered at {url}")


def check_broker(settings: Settings, variable: str = "CELERY_BROKER_URL") -> Check:
    """The broker (named by ``variable``: ENGAGE_BROKER_URL or CELERY_BROKER_URL) connects."""
    url = redact_url(settings.broker_url)
    try:
        # kombu's Connection has no type hints.
        connection: Any = Connection(  # type: ignore[no-untyped-call]
            settings.broker_url,
            connect_timeout=TIMEOUT,
            transport_options=broker_transport_options(settings),  # sentinel://: the master name
        )
        with connection:
            connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0.5)
    except Exception as err:  # any failure to connect, whatever the transport, is the verdict
        return Check(
            "broker",
            False,
            f"cannot connect to {url}: {type(err).__name__}: {err}",
            f"start the broker, or fix host, port, database and credentials in {variable}",
        )
    return Check("broker", True, f"connected to {url}")


def check_engage(settings: Settings) -> Check:
    """Engage answers system/getApiVersion with these credentials."""
    engage = settings.engage
    if engage is None:
        return Check(
            "engage",
            False,
            "ENGAGE_BASE_URL is not set: this environment can enqueue, but a worker cannot send",
            "set ENGAGE_BASE_URL, ENGAGE_USERNAME and ENGAGE_PASSWORD for workers",
        )
    base = redact_url(engage.base_url)
    try:
        client = build_client(
            engage,
            connect_timeout=min(settings.connect_timeout, TIMEOUT),
            read_timeout=min(settings.read_timeout, TIMEOUT * 2),
        )
        version = client.api_version()
    except (EngageAPIError, UnexpectedAnswer) as answered:
        # An answer may quote anything (a proxy's page): shown masked, as a send's errors are.
        return _engage_failed(engage.base_url, answered.masked(mask_text))
    except EngageError as err:
        return _engage_failed(engage.base_url, err)
    return Check("engage", True, f"API version {version} at {base}; credentials accepted")


def _engage_failed(base_url: str, err: EngageError) -> Check:
    """The check's verdict on a failed system/getApiVersion."""
    base = redact_url(base_url)
    if isinstance(err, CredentialsRejected):
        return Check(
            "engage",
            False,
            f"Engage refused ENGAGE_USERNAME/ENGAGE_PASSWORD (HTTP {err.status})",
            "check the API user's password (and that ENGAGE_USERNAME is a user of type API User)",
        )
    if isinstance(err, EngageAPIError):
        return Check("engage", False, f"{base} answered: {err}", _api_error_fix(err.status))
    if isinstance(err, RequestNotSent):
        where = urlsplit(base_url)
        return Check(
            "engage",
            False,
            f"could not reach {where.hostname}:{where.port or _default_port(where.scheme)}: {err}",
            "check the host and port in ENGAGE_BASE_URL, and that this machine can reach it",
        )
    return Check("engage", False, str(err), "check ENGAGE_BASE_URL and ENGAGE_TRANSPORT")


def _api_error_fix(status: int) -> str:
    if status == 404:
        return (
            "check the path prefix and version in ENGAGE_BASE_URL "
            "(REST: https://<tenant-host>/api/rest/v19, SOAP: .../api/soap/v17)"
        )
    if status >= 500:
        return "Engage is failing or overloaded: try again later; if it lasts, ask Mapp support"
    return "check ENGAGE_BASE_URL and ENGAGE_TRANSPORT (rest or soap)"


def _url_passwords(settings: Settings) -> list[str]:
    engage = [] if settings.engage is None else [settings.engage.base_url]
    urls = (settings.redis_url, settings.broker_url, *engage)
    # A sentinel:// URL lists several servers: each part may carry a password.
    parts = [part for url in urls for part in url.split(";")]
    found = [p for p in (urlsplit(part).password for part in parts) if p]
    return [*found, *([settings.sentinel_password] if settings.sentinel_password else [])]


def _scrubbed(check: Check, secrets: list[str]) -> Check:
    # A last guard: no error text from a library may carry a password onto the screen.
    return dataclasses.replace(
        check, detail=_replace_all(check.detail, secrets), fix=_replace_all(check.fix, secrets)
    )


def _replace_all(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def check_callback_consumers(settings: Settings) -> Check:
    """Some worker on the broker consumes ENGAGE_ON_DONE_QUEUE; a WARN (not a failure) if none.

    Callbacks are published to the broker of this package; a host application's workers must
    consume that queue there. Nobody consuming it is silent otherwise: the callbacks just wait.
    """
    queue = settings.on_done_queue
    consumers = _consumers_of(settings.broker_url, queue, broker_transport_options(settings))
    if consumers is None:
        return Check("callbacks", None, "could not ask the workers which queues they consume")
    if consumers:
        shown = ", ".join(sorted(consumers)[:3]) + (" ..." if len(consumers) > 3 else "")
        return Check("callbacks", True, f"queue {queue!r} is consumed by {shown}")
    return Check(
        "callbacks",
        True,
        f"no worker answering on this broker consumes {queue!r}: completion callbacks (on_done, "
        "ENGAGE_ON_DONE_TASK) would wait there unread",
        "run your app's worker on this package's broker with -Q "
        f"{queue} (README: Host integration), or ignore this if no send names a callback",
        warning=True,
    )


def _consumers_of(
    broker_url: str, queue: str, transport_options: dict[str, Any] | None = None
) -> list[str] | None:
    """Names of the workers consuming ``queue`` (Celery's inspect), or None when asking failed."""
    from celery import Celery  # noqa: PLC0415  (the doctor's only use of Celery)

    # An app of the doctor's own: Celery's control commands reach every worker on the broker,
    # this package's and the host's alike. Read and write URLs win over CELERY_BROKER_URL.
    probe = Celery("engage-sms-doctor", set_as_current=False)
    probe.conf.update(
        broker_url=broker_url,
        broker_read_url=broker_url,
        broker_write_url=broker_url,
        broker_transport_options=transport_options or {},  # sentinel://: the master name
    )
    try:
        replies = probe.control.inspect(timeout=CONSUMERS_TIMEOUT).active_queues() or {}
    except Exception:  # any failure to ask is "could not tell", never a crash of the doctor
        return None
    finally:
        probe.close()
    return [
        worker
        for worker, queues in replies.items()
        if any(entry.get("name") == queue for entry in queues or ())
    ]
