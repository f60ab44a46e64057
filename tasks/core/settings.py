"""One settings object, read once from the environment and handed to constructors.

Read per role: enqueueing and asking for a status need only the broker and Redis, so a web process
never has to hold the Engage password; :meth:`Settings.require_engage` is what workers, ``doctor``
and the demo call. The package's Celery configuration (:mod:`tasks.worker.config`) and the CLI
call :func:`load_settings` and pass the result on. The only other reads of ``os.environ`` are of
variables not ours: requests' proxy and CA variables, read once in
:func:`tasks.engage.http.make_session`, and Flower's ``FLOWER_BASIC_AUTH``, checked before
Flower starts (tests/unit/test_settings_declared.py keeps it so).

Each variable is declared once, in :data:`SETTINGS` (name, type, default, bound, meaning): the
loader, the dataclass defaults and the README's table (:func:`settings_table`) all read it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from tasks.core.environment import Environment, Setting
from tasks.core.errors import ConfigurationError
from tasks.core.numbers import NUMBER_TYPES, REGIONS, NumberPolicy
from tasks.core.send_options import Priority, lane_queues
from tasks.core.sending_policy import POLICY_SETTINGS, SendingPolicy
from tasks.core.urls import is_sentinel_url, parse_sentinel_url

#: Every variable of the settings table, in the README's order (README: Configuration).
#: The README's table is generated from these (``python scripts/settings_table.py``); a new
#: variable is one more entry here. ``field``: the :class:`Settings` attribute it fills.
# One declaration per entry: name, type, default and bounds on the first line, then the meaning.
# fmt: off
SETTINGS: tuple[Setting[Any], ...] = (
    Setting("ENGAGE_BASE_URL", str, None, shown="required by workers",
            doc="Full REST base with any prefix and version, e.g. "
                "`https://tenant.example/api/rest/v19`; with SOAP, the SOAP endpoint"),
    Setting("ENGAGE_USERNAME", str, None, shown="required with `ENGAGE_BASE_URL`",
            doc="The Engage API user (HTTP Basic)"),
    Setting("ENGAGE_PASSWORD", str, None, shown="required with `ENGAGE_BASE_URL`",
            doc="The Engage API user's password (HTTP Basic); never logged or shown"),
    Setting("ENGAGE_TRANSPORT", str, "rest", choices=("rest", "soap"),
            doc="`rest` or `soap`"),
    Setting("ENGAGE_BROKER_URL", str, None,
            shown="`CELERY_BROKER_URL`, else `redis://127.0.0.1:6379/0`",
            doc="This package's Celery broker; use it beside a Celery app of your own. Also "
                "kombu's Sentinel form, `sentinel://h1:26379;sentinel://h2:26379;...`"),
    Setting("CELERY_BROKER_URL", str, "redis://127.0.0.1:6379/0",
            doc="Celery broker, read when `ENGAGE_BROKER_URL` is unset"),
    Setting("CELERY_RESULT_BACKEND", str, None, field="result_backend", shown="unset (results off)",
            doc="Status lives in the ledger; set this only if you want Celery results too"),
    Setting("REDIS_URL", str, None, shown="the broker URL",
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
    Setting("ENGAGE_DEFAULT_REGION", str, None,
            doc="Region of numbers given without a country code (e.g. `PL`); unset: national "
                "numbers are refused"),
    Setting("ENGAGE_NUMBER_TYPES", str, None, shown="`mobile,fixed_line_or_mobile`",
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
    Setting("ENGAGE_METRICS_PORT", int, None,
            doc="The worker's Prometheus endpoint (off unless a port is set)"),
    Setting("ENGAGE_METRICS_ADDRESS", str, "127.0.0.1", field="metrics_address",
            doc="The address the worker's endpoint and `engage-sms metrics` listen on"),
    Setting("ENGAGE_SENT_EVENTS", bool, False, field="sent_events",
            doc="`on`: enqueue also publishes Celery's `task-sent` event, so Flower lists tasks "
                "still queued (one more Redis round trip per enqueue)"),
    Setting("ENGAGE_ON_DONE_TASK", str, None,
            doc="Celery task published with the final status of every send that names no "
                "`on_done`, e.g. `myapp.tasks.sms_finished`"),
    Setting("ENGAGE_HTTP_RATE_LIMIT", int, 100, field="http.rate_limit",
            doc="Requests per second one API token may make to `engage-sms api` (`0`: no limit)"),
    Setting("ENGAGE_ON_DONE_QUEUE", str, None, shown="`{prefix}.callbacks`",
            doc="Queue the completion callbacks go to: one your app's workers consume; this "
                "package's workers publish them and refuse to consume it (never one of its lanes)"),
    Setting("ENGAGE_SCHEDULE_FILE", str, None, field="schedule_file", shown="unset (no schedules)",
            doc="Beat's TOML file of periodic sends (`schedules.example.toml`); set it on beat "
                "only, which publishes each run's schedule to the workers; `doctor` checks it"),
    Setting("ENGAGE_REDIS_MASTER_NAME", str, None, shown="required with `sentinel://`",
            doc='The name the sentinels monitor the primary under (see "Running on more than one '
                'machine")'),
    Setting("ENGAGE_SENTINEL_PASSWORD", str, None,
            doc="The sentinels' own password (the primary's is in the URL); never shown"),
    Setting("ENGAGE_REPLICA_ACKS", int, None, shown="`1` with `sentinel://`, else `0`",
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
#: Where completion callbacks are published, after the key prefix: a queue of the deployment's
#: own name that none of its workers consumes (they refuse to), for the host app's workers.
ON_DONE_QUEUE_SUFFIX = "callbacks"
DEFAULT_ON_DONE_QUEUE = f"engage.{ON_DONE_QUEUE_SUFFIX}"


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
    transport: str = str(DECLARED["ENGAGE_TRANSPORT"].default)


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
    metrics_port: int | None = None
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
    on_done_task: str | None = None
    #: Queue the completion callbacks are published to (``ENGAGE_ON_DONE_QUEUE``; default
    #: ``{prefix}.callbacks``).
    on_done_queue: str = DEFAULT_ON_DONE_QUEUE
    #: Deadlines, quiet hours, recipient caps, opt-outs, contact creation (README: Sending policy).
    policy: SendingPolicy = field(default_factory=SendingPolicy)
    #: With ``sentinel://`` URLs: the name the sentinels monitor the primary under.
    redis_master_name: str | None = None
    #: The sentinels' own password (``ENGAGE_SENTINEL_PASSWORD``), not the primary's.
    sentinel_password: str | None = field(default=None, repr=False)
    #: Replicas that must hold a claim or a lease before it counts (``WAIT``); 0: no barrier.
    replica_acks: int = 0
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
    # ENGAGE_BROKER_URL first: Celery itself applies CELERY_BROKER_URL to every app in the
    # process, so a web app with a Celery app of its own names ours apart (README: host apps).
    broker_url = env.url(broker_variable(environ), DEFAULT_BROKER_URL, schemes=_BROKER_SCHEMES)
    redis_url = env.url("REDIS_URL", broker_url, schemes=_REDIS_SCHEMES)
    declared: dict[str, Any] = {
        setting.field: setting.read(env) for setting in SETTINGS if setting.field
    }
    nested = {"retry": RetrySettings, "http": HttpSettings, "policy": SendingPolicy}
    top = {name: value for name, value in declared.items() if "." not in name}
    for group, build in nested.items():
        members = {n.partition(".")[2]: v for n, v in declared.items() if n.startswith(group + ".")}
        top[group] = build(**members)
    # One deployment per prefix: its Redis keys, its queues and its callback queue.
    prefix = top["key_prefix"]
    settings = Settings(
        **top,
        engage=_engage_settings(env),
        broker_url=broker_url,
        redis_url=redis_url,
        metrics_port=env.optional_port("ENGAGE_METRICS_PORT"),
        numbers=_number_policy(env),
        on_done_task=env.task_name("ENGAGE_ON_DONE_TASK"),
        on_done_queue=env.optional_text("ENGAGE_ON_DONE_QUEUE")
        or f"{prefix}.{ON_DONE_QUEUE_SUFFIX}",
        **_high_availability(env, broker_url, redis_url),
    )
    _check_consistency(settings)
    return settings


def broker_variable(environ: Mapping[str, str]) -> str:
    """The variable naming this package's broker: ENGAGE_BROKER_URL when set, else Celery's."""
    given = Environment(environ).optional_text("ENGAGE_BROKER_URL")
    return "ENGAGE_BROKER_URL" if given else "CELERY_BROKER_URL"


def _engage_settings(env: Environment) -> EngageSettings | None:
    """Engage's address and login: all or nothing (a web process that only enqueues sets none)."""
    transport = str(DECLARED["ENGAGE_TRANSPORT"].read(env))
    if env.optional_text("ENGAGE_BASE_URL") is None:
        for name in ("ENGAGE_USERNAME", "ENGAGE_PASSWORD"):
            if env.optional_text(name) is not None:
                raise ConfigurationError("ENGAGE_BASE_URL", f"is not set, but {name} is")
        return None
    return EngageSettings(
        base_url=env.url("ENGAGE_BASE_URL", None, schemes=("http", "https")).rstrip("/"),
        username=env.text("ENGAGE_USERNAME"),
        password=env.text("ENGAGE_PASSWORD"),
        transport=transport,
    )


def _high_availability(env: Environment, broker_url: str, redis_url: str) -> dict[str, Any]:
    """Sentinel's master name and password, and the replica acks every ledger write waits for."""
    on_sentinel = False
    for name, url in (("ENGAGE_BROKER_URL", broker_url), ("REDIS_URL", redis_url)):
        if is_sentinel_url(url):
            on_sentinel = True
            try:
                parse_sentinel_url(url)
            except ValueError as err:
                raise ConfigurationError(name, str(err)) from None
    master_name = env.optional_text("ENGAGE_REDIS_MASTER_NAME")
    if on_sentinel and master_name is None:
        raise ConfigurationError(
            "ENGAGE_REDIS_MASTER_NAME", "is not set (a sentinel:// URL needs the primary's name)"
        )
    return {
        "redis_master_name": master_name,
        "sentinel_password": env.optional_text("ENGAGE_SENTINEL_PASSWORD"),
        # Sentinel replicates asynchronously: by default a lease is held by one replica first.
        "replica_acks": env.integer("ENGAGE_REPLICA_ACKS", 1 if on_sentinel else 0, 0),
    }


def _number_policy(env: Environment) -> NumberPolicy:
    """National numbers' region and the number types that may receive an SMS."""
    region = (env.optional_text("ENGAGE_DEFAULT_REGION") or "").upper() or None
    if region is not None and region not in REGIONS:
        raise ConfigurationError(
            "ENGAGE_DEFAULT_REGION",
            f"must be a two-letter region code (PL, DE, US...), got {region!r}",
        )
    raw = env.optional_text("ENGAGE_NUMBER_TYPES")
    if raw is None:
        return NumberPolicy(default_region=region)
    types = frozenset(name.strip().lower() for name in raw.split(",") if name.strip())
    if not types or types - NUMBER_TYPES.keys():
        raise ConfigurationError(
            "ENGAGE_NUMBER_TYPES", f"must be a comma-separated list of {', '.join(NUMBER_TYPES)}"
        )
    return NumberPolicy(default_region=region, types=types)


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


_REDIS_SCHEMES = ("redis", "rediss", "unix", "sentinel")
_BROKER_SCHEMES = (*_REDIS_SCHEMES, "amqp", "amqps", "pyamqp", "memory")


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
