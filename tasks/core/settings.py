"""One settings object, read once from the environment and handed to constructors.

Read per role: enqueueing and asking for a status need only the broker and Redis, so a web process
never has to hold the Engage password; :meth:`Settings.require_engage` is what workers, ``doctor``
and the demo call. The package's Celery configuration (:mod:`tasks.worker.config`) and the CLI
call :func:`load_settings` and pass the result on. The only other reads of ``os.environ`` are of
variables not ours: requests' proxy and CA variables, read once in
:func:`tasks.engage.http.make_session`, and Flower's ``FLOWER_BASIC_AUTH``, checked before
Flower starts (tests/unit/test_settings_declared.py keeps it so).

Each variable is declared once, in :data:`SETTINGS` (name, type, default, bound, meaning): the
loader, the dataclass defaults and the README's table (:func:`settings_table`) all read it. Every
declaration fills one attribute; one whose value is no plain number, flag or choice (URLs, ports,
defaults derived from another variable) names a ``reader``, and is still read by the one loader.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import urlsplit

from tasks.core.environment import Environment, Setting
from tasks.core.errors import ConfigurationError
from tasks.core.numbers import DEFAULT_NUMBER_TYPES, NUMBER_TYPES, REGIONS, NumberPolicy
from tasks.core.send_options import Priority, lane_queues
from tasks.core.sending_policy import POLICY_SETTINGS, SendingPolicy
from tasks.core.urls import is_sentinel_url, parse_sentinel_url

#: Where completion callbacks are published, after the key prefix: a queue of the deployment's
#: own name that none of its workers consumes (they refuse to), for the host app's workers.
ON_DONE_QUEUE_SUFFIX = "callbacks"
_REDIS_SCHEMES = ("redis", "rediss", "unix", "sentinel")
_BROKER_SCHEMES = (*_REDIS_SCHEMES, "amqp", "amqps", "pyamqp", "memory")


def _read_broker_url(env: Environment, setting: Setting[Any]) -> str:
    """``ENGAGE_BROKER_URL``, else Celery's ``CELERY_BROKER_URL``, else its declared default.

    ENGAGE_BROKER_URL first: Celery itself applies CELERY_BROKER_URL to every app in the
    process, so a web app with a Celery app of its own names ours apart (README: host apps).
    """
    fallback = DECLARED["CELERY_BROKER_URL"]
    name = setting.name if env.optional_text(setting.name) else fallback.name
    url = env.url(name, str(fallback.default), schemes=_BROKER_SCHEMES)
    return _checked_sentinel(setting.name, url)


def _read_redis_url(env: Environment, setting: Setting[Any]) -> str:
    """``REDIS_URL``, else the broker's URL."""
    broker = _read_broker_url(env, DECLARED["ENGAGE_BROKER_URL"])
    return _checked_sentinel(setting.name, env.url(setting.name, broker, schemes=_REDIS_SCHEMES))


def _checked_sentinel(name: str, url: str) -> str:
    if is_sentinel_url(url):
        try:
            parse_sentinel_url(url)
        except ValueError as err:
            raise ConfigurationError(name, str(err)) from None
    return url


def _on_sentinel(env: Environment) -> bool:
    """True when the broker or the ledger's Redis is named by its sentinels."""
    broker = _read_broker_url(env, DECLARED["ENGAGE_BROKER_URL"])
    return is_sentinel_url(broker) or is_sentinel_url(_read_redis_url(env, DECLARED["REDIS_URL"]))


def _read_engage_url(env: Environment, setting: Setting[Any]) -> str | None:
    if env.optional_text(setting.name) is None:
        return None
    return env.url(setting.name, None, schemes=("http", "https")).rstrip("/")


def _read_port(env: Environment, setting: Setting[Any]) -> int | None:
    return env.optional_port(setting.name)


def _read_task_name(env: Environment, setting: Setting[Any]) -> str | None:
    return env.task_name(setting.name)


def _read_region(env: Environment, setting: Setting[Any]) -> str | None:
    region = (env.optional_text(setting.name) or "").upper() or None
    if region is not None and region not in REGIONS:
        raise ConfigurationError(
            setting.name, f"must be a two-letter region code (PL, DE, US...), got {region!r}"
        )
    return region


def _read_number_types(env: Environment, setting: Setting[Any]) -> frozenset[str]:
    raw = env.optional_text(setting.name)
    if raw is None:
        return cast("frozenset[str]", setting.default)
    types = frozenset(name.strip().lower() for name in raw.split(",") if name.strip())
    if not types or types - NUMBER_TYPES.keys():
        raise ConfigurationError(
            setting.name, f"must be a comma-separated list of {', '.join(NUMBER_TYPES)}"
        )
    return types


def _read_on_done_queue(env: Environment, setting: Setting[Any]) -> str:
    """The queue given, else ``{prefix}.callbacks``: one deployment per prefix."""
    prefix = DECLARED["ENGAGE_KEY_PREFIX"].read(env)
    return env.optional_text(setting.name) or f"{prefix}.{ON_DONE_QUEUE_SUFFIX}"


def _read_master_name(env: Environment, setting: Setting[Any]) -> str | None:
    master_name = env.optional_text(setting.name)
    if master_name is None and _on_sentinel(env):
        raise ConfigurationError(
            setting.name, "is not set (a sentinel:// URL needs the primary's name)"
        )
    return master_name


def _read_replica_acks(env: Environment, setting: Setting[Any]) -> int:
    # Sentinel replicates asynchronously: by default a lease is held by one replica first.
    default = 1 if _on_sentinel(env) else int(cast("int", setting.default))
    return env.integer(setting.name, default, int(setting.minimum))


#: Every variable of the settings table, in the README's order (README: Configuration).
#: The README's table is generated from these (``python scripts/settings_table.py``); a new
#: variable is one more entry here. ``field``: the :class:`Settings` attribute it fills.
#: ``CELERY_BROKER_URL`` is Celery's own variable: ``ENGAGE_BROKER_URL``'s reader falls back to it.
# One declaration per entry: name, type, default and bounds on the first line, then the meaning.
# fmt: off
SETTINGS: tuple[Setting[Any], ...] = (
    Setting("ENGAGE_BASE_URL", str, None, field="engage.base_url", reader=_read_engage_url,
            shown="required by workers",
            doc="Full REST base with any prefix and version, e.g. "
                "`https://tenant.example/api/rest/v19`; with SOAP, the SOAP endpoint"),
    Setting("ENGAGE_USERNAME", str, None, field="engage.username",
            shown="required with `ENGAGE_BASE_URL`",
            doc="The Engage API user (HTTP Basic)"),
    Setting("ENGAGE_PASSWORD", str, None, field="engage.password",
            shown="required with `ENGAGE_BASE_URL`",
            doc="The Engage API user's password (HTTP Basic); never logged or shown"),
    Setting("ENGAGE_TRANSPORT", str, "rest", field="engage.transport", choices=("rest", "soap"),
            doc="`rest` or `soap`"),
    Setting("ENGAGE_BROKER_URL", str, None, field="broker_url", reader=_read_broker_url,
            shown="`CELERY_BROKER_URL`, else `redis://127.0.0.1:6379/0`",
            doc="This package's Celery broker; use it beside a Celery app of your own. Also "
                "kombu's Sentinel form, `sentinel://h1:26379;sentinel://h2:26379;...`"),
    Setting("CELERY_BROKER_URL", str, "redis://127.0.0.1:6379/0",
            doc="Celery broker, read when `ENGAGE_BROKER_URL` is unset"),
    Setting("CELERY_RESULT_BACKEND", str, None, field="result_backend", shown="unset (results off)",
            doc="Status lives in the ledger; set this only if you want Celery results too"),
    Setting("REDIS_URL", str, None, field="redis_url", shown="the broker URL",
            reader=_read_redis_url,
            doc="Where the ledger, dead letters, rate limit and cache live"),
    Setting("ENGAGE_KEY_PREFIX", str, "engage", field="key_prefix",
            doc="The deployment: prefix of every Redis key this package writes, of its lane queues "
                "(`{prefix}.urgent`, `.normal`, `.bulk`) and of its callback queue. One deployment "
                "per prefix (see Operating it)"),
    Setting("ENGAGE_CONNECT_TIMEOUT", float, 5.0, field="connect_timeout", minimum=0.1, unit=" s",
            doc="HTTP connect timeout; with the read timeout, each call's total deadline, answer "
                "included"),
    Setting("ENGAGE_READ_TIMEOUT", float, 35.0, field="read_timeout", minimum=0.1, unit=" s",
            doc="HTTP read timeout (Engage asks for more than 30 s)"),
    Setting("ENGAGE_RATE_LIMIT", float, 10.0, field="rate_limit", unit="/s",
            doc="Global budget for Engage calls across all workers, kept in Redis: the smallest "
                "any worker brings wins (`0`: none of its own)"),
    Setting("ENGAGE_RATE_BURST", float, 1.0, field="rate_burst", minimum=1,
            doc="Calls of that budget that may start at one instant (`1`: evenly spaced)"),
    Setting("ENGAGE_RATE_MAX_WAIT", float, 5.0, field="rate_max_wait", unit=" s",
            doc="Longest a task sleeps for its slot before handing it back to Celery"),
    Setting("ENGAGE_CONTACT_CACHE_TTL", float, 86400.0, field="contact_cache_ttl", unit=" s",
            doc="Contact-id cache lifetime (`0`: off)"),
    Setting("ENGAGE_DEFAULT_REGION", str, None, field="numbers.default_region",
            reader=_read_region,
            doc="Region of numbers given without a country code (e.g. `PL`); unset: national "
                "numbers are refused"),
    Setting("ENGAGE_NUMBER_TYPES", frozenset, DEFAULT_NUMBER_TYPES, field="numbers.types",
            shown="`mobile,fixed_line_or_mobile`", reader=_read_number_types,
            doc="Number types that may receive an SMS (landlines are refused)"),
    Setting("ENGAGE_RETRY_BASE_DELAY", float, 30.0, field="retry.base_delay", unit=" s",
            doc="First backoff delay: 30 s, then 15 min (plus up to 20 % jitter, never less)"),
    Setting("ENGAGE_RETRY_BACKOFF", float, 30.0, field="retry.backoff", minimum=1,
            doc="Factor between one backoff delay and the next"),
    Setting("ENGAGE_RETRY_MAX_DELAY", float, 900.0, field="retry.max_delay", unit=" s",
            doc="Longest backoff delay"),
    Setting("ENGAGE_RETRY_MAX_ATTEMPTS", int, 3, field="retry.max_attempts", minimum=1,
            doc="Failed calls per step before `retries_exhausted`"),
    Setting("ENGAGE_RETRY_MAX_TOTAL", float, 1800.0, field="retry.max_total", unit=" s",
            doc="Time from the first failure before `retries_exhausted`"),
    Setting("ENGAGE_UNKNOWN_RECIPIENT_RETRIES", int, 2, field="retry.unknown_recipient_retries",
            doc="Short lookups for a contact created a moment ago"),
    Setting("ENGAGE_UNKNOWN_RECIPIENT_DELAY", float, 5.0, field="retry.unknown_recipient_delay",
            unit=" s",
            doc="Delay of those lookups"),
    Setting("ENGAGE_UNKNOWN_ERROR_RETRIES", int, 2, field="retry.unknown_error_retries",
            doc="Retries of a 400 whose `errorCode` is unknown"),
    Setting("ENGAGE_ON_UNKNOWN_OUTCOME", str, "dead_letter", field="retry.on_unknown_outcome",
            choices=("dead_letter", "retry"),
            doc="`retry` resends when a send's answer was lost (may double it)"),
    Setting("ENGAGE_MAX_REDELIVERIES", int, 3, field="retry.max_redeliveries", minimum=1,
            doc="Deliveries of one task attempt before it counts as killing its worker"),
    Setting("ENGAGE_VISIBILITY_TIMEOUT", float, 7200.0, field="visibility_timeout", minimum=1,
            unit=" s",
            doc="Redis transport visibility timeout; must exceed every retry delay (checked at "
                "start)"),
    Setting("ENGAGE_LEASE_MARGIN", float, 30.0, field="lease_margin", minimum=0.5, unit=" s",
            doc="Send lease = connect + read timeout + this"),
    Setting("ENGAGE_KEY_GRACE", float, 86400.0, field="key_grace", unit=" s",
            doc="How long idempotency records outlive the retry window"),
    Setting("ENGAGE_DLQ_MAX_ENTRIES", int, 10_000, field="dlq_max_entries", minimum=1,
            doc="Dead letters listed at most (over the count, the oldest leave the listing but "
                "stay replayable: see Operating it)"),
    Setting("ENGAGE_DLQ_MAX_AGE_DAYS", float, 180.0, field="dlq_max_age", scale=86400,
            doc="Days a dead letter is kept at most"),
    Setting("ENGAGE_SWEEP_INTERVAL", float, 30.0, field="sweep_interval", minimum=1, unit=" s",
            doc="How often each worker sweeps for stuck sends (recovery without beat)"),
    Setting("ENGAGE_METRICS_PORT", int, None, field="metrics_port", minimum=1,
            reader=_read_port,
            doc="The worker's Prometheus endpoint (off unless a port is set)"),
    Setting("ENGAGE_METRICS_ADDRESS", str, "127.0.0.1", field="metrics_address",
            doc="The address the worker's endpoint and `engage-sms metrics` listen on"),
    Setting("ENGAGE_SENT_EVENTS", bool, False, field="sent_events",
            doc="`on`: enqueue also publishes Celery's `task-sent` event, so Flower lists tasks "
                "still queued (one more Redis round trip per enqueue)"),
    Setting("ENGAGE_ON_DONE_TASK", str, None, field="on_done_task",
            reader=_read_task_name,
            doc="Celery task published with the final status of every send that names no "
                "`on_done`, e.g. `myapp.tasks.sms_finished`"),
    Setting("ENGAGE_HTTP_RATE_LIMIT", int, 100, field="http.rate_limit",
            doc="Requests per second one API token may make to `engage-sms api` (`0`: no limit)"),
    Setting("ENGAGE_ON_DONE_QUEUE", str, None, field="on_done_queue",
            shown="`{prefix}.callbacks`", reader=_read_on_done_queue,
            doc="Queue the completion callbacks go to: one your app's workers consume; this "
                "package's workers publish them and refuse to consume it (never one of its lanes)"),
    Setting("ENGAGE_SCHEDULE_FILE", str, None, field="schedule_file", shown="unset (no schedules)",
            doc="Beat's TOML file of periodic sends (`schedules.example.toml`); set it on beat "
                "only, which publishes each run's schedule to the workers; `doctor` checks it"),
    Setting("ENGAGE_REDIS_MASTER_NAME", str, None, field="redis_master_name",
            shown="required with `sentinel://`", reader=_read_master_name,
            doc='The name the sentinels monitor the primary under (see "Running on more than one '
                'machine")'),
    Setting("ENGAGE_SENTINEL_PASSWORD", str, None, field="sentinel_password",
            doc="The sentinels' own password (the primary's is in the URL); never shown"),
    Setting("ENGAGE_REPLICA_ACKS", int, 0, field="replica_acks", reader=_read_replica_acks,
            shown="`1` with `sentinel://`, else `0`",
            doc="Replicas that must hold a claim or a lease (`WAIT`) before it counts; fewer: "
                "enqueue fails, the send is held back"),
    Setting("ENGAGE_REPLICA_ACK_TIMEOUT", float, 500.0, field="replica_ack_timeout", minimum=1,
            unit=" ms",
            doc="Longest one `WAIT` for those replicas takes"),
    # Deadlines, quiet hours, caps, opt-outs, contact creation (README: Sending policy).
    *POLICY_SETTINGS,
)
# fmt: on

#: The declarations by variable name.
DECLARED = {setting.name: setting for setting in SETTINGS}
_BY_FIELD = {setting.field: setting for setting in SETTINGS if setting.field}


def default(field_path: str) -> Any:
    """The declared default of a :class:`Settings` attribute (``retry.base_delay``)."""
    return _BY_FIELD[field_path].value


def settings_table() -> str:
    """The README's settings table (Configuration), one row per declaration, in their order."""
    rows = ["| Variable | Default | Meaning |", "|---|---|---|", *(s.row() for s in SETTINGS)]
    return "\n".join(rows) + "\n"


#: Broker used when neither ``ENGAGE_BROKER_URL`` nor ``CELERY_BROKER_URL`` is set: local Redis.
DEFAULT_BROKER_URL = str(DECLARED["CELERY_BROKER_URL"].default)
#: Where the metrics endpoints listen: this machine only, unless an address is configured.
DEFAULT_METRICS_ADDRESS: str = default("metrics_address")
#: Requests one API token may make per second (``engage-sms api``); 0: no limit.
DEFAULT_HTTP_RATE_LIMIT: int = default("http.rate_limit")
#: The completion callbacks' queue of the default deployment (``{prefix}.callbacks``).
DEFAULT_ON_DONE_QUEUE = f"{default('key_prefix')}.{ON_DONE_QUEUE_SUFFIX}"


@dataclass(frozen=True)
class RetrySettings:
    """How often and how long each class of error is retried."""

    base_delay: float = default("retry.base_delay")
    backoff: float = default("retry.backoff")
    max_delay: float = default("retry.max_delay")
    max_attempts: int = default("retry.max_attempts")
    max_total: float = default("retry.max_total")
    unknown_recipient_retries: int = default("retry.unknown_recipient_retries")
    unknown_recipient_delay: float = default("retry.unknown_recipient_delay")
    unknown_error_retries: int = default("retry.unknown_error_retries")
    on_unknown_outcome: str = default("retry.on_unknown_outcome")
    max_redeliveries: int = default("retry.max_redeliveries")

    @property
    def window(self) -> float:
        """The longest time a send can spend retrying."""
        return self.max_total + self.max_delay


@dataclass(frozen=True)
class HttpSettings:
    """The HTTP front door (``engage-sms api``): limits per API token."""

    #: Requests per second per token (``ENGAGE_HTTP_RATE_LIMIT``); 0: no limit.
    rate_limit: int = default("http.rate_limit")


@dataclass(frozen=True)
class EngageSettings:
    """Where Engage is and how to log in: needed only by processes that call Engage."""

    base_url: str
    username: str
    password: str = field(repr=False)
    transport: str = default("engage.transport")


@dataclass(frozen=True)
class Settings:
    """Everything the package needs to run, validated."""

    #: None in a process that only enqueues (``ENGAGE_BASE_URL`` not set).
    engage: EngageSettings | None = None
    broker_url: str = DEFAULT_BROKER_URL
    result_backend: str | None = None
    redis_url: str = DEFAULT_BROKER_URL
    connect_timeout: float = default("connect_timeout")
    read_timeout: float = default("read_timeout")
    rate_limit: float = default("rate_limit")
    rate_burst: float = default("rate_burst")
    rate_max_wait: float = default("rate_max_wait")
    contact_cache_ttl: float = default("contact_cache_ttl")
    visibility_timeout: float = default("visibility_timeout")
    dlq_max_entries: int = default("dlq_max_entries")
    dlq_max_age: float = default("dlq_max_age")
    key_grace: float = default("key_grace")
    lease_margin: float = default("lease_margin")
    retry: RetrySettings = field(default_factory=RetrySettings)
    key_prefix: str = default("key_prefix")
    #: Port of the worker's Prometheus endpoint; None: no endpoint.
    metrics_port: int | None = default("metrics_port")
    #: Address the worker's endpoint and ``engage-sms metrics`` listen on.
    metrics_address: str = DEFAULT_METRICS_ADDRESS
    #: TOML file of periodic prepared sends run by celery beat; None: no schedules.
    schedule_file: str | None = None
    #: How mobile numbers are read at enqueue: ``ENGAGE_DEFAULT_REGION`` (None: international
    #: only) and ``ENGAGE_NUMBER_TYPES`` (see tasks.core.numbers.DEFAULT_NUMBER_TYPES for the
    #: policy).
    numbers: NumberPolicy = field(default_factory=NumberPolicy)
    #: Publish Celery's ``task-sent`` event at enqueue (Flower then lists tasks still queued).
    #: Off by default: it is a third Redis round trip and ~0.3 ms per enqueue.
    sent_events: bool = default("sent_events")
    #: Seconds between two stuck-send sweeps of one worker (:mod:`tasks.worker.recovery`).
    sweep_interval: float = default("sweep_interval")
    #: Celery task published with a send's final status when a send names no ``on_done`` of its
    #: own (``ENGAGE_ON_DONE_TASK``); None: no callback.
    on_done_task: str | None = default("on_done_task")
    #: Queue the completion callbacks are published to (``ENGAGE_ON_DONE_QUEUE``; default
    #: ``{prefix}.callbacks``).
    on_done_queue: str = DEFAULT_ON_DONE_QUEUE
    #: Deadlines, quiet hours, recipient caps, opt-outs, contact creation (README: Sending policy).
    policy: SendingPolicy = field(default_factory=SendingPolicy)
    #: With ``sentinel://`` URLs: the name the sentinels monitor the primary under.
    redis_master_name: str | None = default("redis_master_name")
    #: The sentinels' own password (``ENGAGE_SENTINEL_PASSWORD``), not the primary's.
    sentinel_password: str | None = field(default=default("sentinel_password"), repr=False)
    #: Replicas that must hold a claim or a lease before it counts (``WAIT``); 0: no barrier.
    replica_acks: int = default("replica_acks")
    #: How long (ms) one ``WAIT`` may take before the write counts as not held.
    replica_ack_timeout: float = default("replica_ack_timeout")
    #: The HTTP front door's limits (``ENGAGE_HTTP_*``).
    http: HttpSettings = field(default_factory=HttpSettings)

    @property
    def lane_queues(self) -> dict[Priority, str]:
        """This deployment's Celery queue of each lane (named by the key prefix)."""
        return lane_queues(self.key_prefix)

    def require_engage(self) -> EngageSettings:
        """The Engage settings, for a process that calls Engage; ConfigurationError without."""
        if self.engage is None:
            raise ConfigurationError(
                "ENGAGE_BASE_URL", "is not set (workers, doctor and the demo call Engage)"
            )
        return self.engage

    @property
    def key_retention(self) -> float:
        """How long an idempotency record is kept: the whole retry window plus the grace."""
        return self.retry.window + self.key_grace

    @property
    def lease_seconds(self) -> float:
        """How long a send may hold its lease: one full HTTP exchange and a margin."""
        return self.connect_timeout + self.read_timeout + self.lease_margin


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Build :class:`Settings` from the environment; ConfigurationError names a bad variable."""
    env = Environment(environ)
    declared: dict[str, Any] = {
        setting.field: setting.read(env) for setting in SETTINGS if setting.field
    }
    groups: dict[str, Callable[..., Any]] = {
        "engage": _engage_settings,
        "numbers": NumberPolicy,
        "retry": RetrySettings,
        "http": HttpSettings,
        "policy": SendingPolicy,
    }
    top = {name: value for name, value in declared.items() if "." not in name}
    for group, build in groups.items():
        members = {n.partition(".")[2]: v for n, v in declared.items() if n.startswith(group + ".")}
        top[group] = build(**members)
    settings = Settings(**top)
    _check_consistency(settings)
    return settings


def broker_variable(environ: Mapping[str, str]) -> str:
    """The variable naming this package's broker: ENGAGE_BROKER_URL when set, else Celery's."""
    given = Environment(environ).optional_text("ENGAGE_BROKER_URL")
    return "ENGAGE_BROKER_URL" if given else "CELERY_BROKER_URL"


def _engage_settings(
    base_url: str | None, username: str | None, password: str | None, transport: str
) -> EngageSettings | None:
    """Engage's address and login: all or nothing (a web process that only enqueues sets none)."""
    if base_url is None:
        for name, value in (("ENGAGE_USERNAME", username), ("ENGAGE_PASSWORD", password)):
            if value is not None:
                raise ConfigurationError("ENGAGE_BASE_URL", f"is not set, but {name} is")
        return None
    for name, value in (("ENGAGE_USERNAME", username), ("ENGAGE_PASSWORD", password)):
        if value is None:
            raise ConfigurationError(name, "is not set")
    return EngageSettings(
        base_url=base_url, username=str(username), password=str(password), transport=transport
    )


def _check_consistency(settings: Settings) -> None:
    if settings.on_done_queue in settings.lane_queues.values():
        # This package's workers would take the callback, find no such task and drop it.
        raise ConfigurationError(
            "ENGAGE_ON_DONE_QUEUE",
            f"must be a queue your application's workers consume, not this package's lane "
            f"{settings.on_done_queue!r}",
        )
    retry = settings.retry
    longest_wait = (
        max(retry.max_delay, retry.unknown_recipient_delay) * 1.25 + settings.lease_seconds
    )
    if broker_is_redis(settings.broker_url) and longest_wait >= settings.visibility_timeout:
        # A countdown past the visibility timeout makes Redis hand the task to a second worker.
        raise ConfigurationError(
            "ENGAGE_VISIBILITY_TIMEOUT",
            f"must exceed the longest retry delay with jitter plus the send lease "
            f"({longest_wait:.0f} s); got {settings.visibility_timeout:.0f} s",
        )


def broker_is_redis(url: str) -> bool:
    """True when the broker is Redis (visibility timeout applies)."""
    return urlsplit(url).scheme in _REDIS_SCHEMES


def basic_auth_problem(value: str | None) -> str | None:
    """Why ``value`` is no Flower login list (``user:password``, comma-separated), or None.

    Checked before Flower starts: Flower itself takes any text, and an entry without a password
    would let in whoever sends that user name alone.
    """
    if value is None or not value.strip():
        return "is empty: set it to user:password"
    # Split as Flower splits it (no stripping), so what is checked is what Flower compares.
    for number, entry in enumerate(value.split(","), start=1):
        user, colon, password = entry.partition(":")
        if not (colon and user.strip() and password) or entry != entry.strip():
            # Named by position: the entry itself holds a password.
            return f"entry {number} is not user:password (both non-empty, no spaces around)"
    return None
