"""One settings object, read once from the environment and handed to constructors.

Read per role: enqueueing and asking for a status need only the broker and Redis, so a web process
never has to hold the Engage password; :meth:`Settings.require_engage` is what workers, ``doctor``
and the demo call. The package's Celery configuration (:mod:`tasks.worker.config`) and the CLI
call :func:`load_settings` and pass the result on. The only other reads of ``os.environ`` are
requests' proxy and CA variables, read once in :func:`tasks.engage.http.make_session`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from tasks.environment import Environment
from tasks.errors import ConfigurationError
from tasks.numbers import NUMBER_TYPES, REGIONS, NumberPolicy
from tasks.send_options import Priority, lane_queues
from tasks.sending_policy import SendingPolicy, load_policy
from tasks.urls import is_sentinel_url, parse_sentinel_url

#: Broker used when neither ``ENGAGE_BROKER_URL`` nor ``CELERY_BROKER_URL`` is set: local Redis.
DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/0"
#: Engage asks for client timeouts above 30 s; connecting should be quick.
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_READ_TIMEOUT = 35.0
#: Engage's documented budget per tenant, and how many calls may start at one instant (1: evenly
#: spaced calls, a little more than 1/rate apart, so no one-second window sees more than the
#: rate; see tasks.state.rate_limit.JITTER_ALLOWANCE).
DEFAULT_RATE_LIMIT = 10.0
DEFAULT_RATE_BURST = 1.0
#: Longest a task sleeps for its rate-limit slot before handing the slot back to Celery.
DEFAULT_RATE_MAX_WAIT = 5.0
#: Production retry schedule from Engage's guidance: after >= 30 s, then >= 15 min, then stop.
DEFAULT_RETRY_BASE_DELAY = 30.0
DEFAULT_RETRY_BACKOFF = 30.0
DEFAULT_RETRY_MAX_DELAY = 900.0
DEFAULT_RETRY_MAX_ATTEMPTS = 3
DEFAULT_RETRY_MAX_TOTAL = 1800.0
#: A contact created a moment ago may not be visible yet: a few short lookups before giving up.
DEFAULT_UNKNOWN_RECIPIENT_RETRIES = 2
DEFAULT_UNKNOWN_RECIPIENT_DELAY = 5.0
#: 400s with an errorCode this package does not know: bounded retries, then dead-letter.
DEFAULT_UNKNOWN_ERROR_RETRIES = 2
#: Deliveries of one task attempt before it counts as killing its worker (poison message).
DEFAULT_MAX_REDELIVERIES = 3
#: Redis transport: an unacked message is handed out again after this many seconds.
DEFAULT_VISIBILITY_TIMEOUT = 7200.0
#: Dead-letter store bounds.
DEFAULT_DLQ_MAX_ENTRIES = 10_000
DEFAULT_DLQ_MAX_AGE = 180 * 86400.0
#: Idempotency records outlive the retry window by this much.
DEFAULT_KEY_GRACE = 86400.0
#: Margin added to the HTTP timeouts to make the send lease: covers scheduling and Redis calls.
DEFAULT_LEASE_MARGIN = 30.0
#: Contact-id cache lifetime.
DEFAULT_CONTACT_CACHE_TTL = 86400.0
#: How often each worker sweeps for stuck sends (recovery without beat).
DEFAULT_SWEEP_INTERVAL = 30.0
#: Where the metrics endpoints listen: this machine only, unless an address is configured.
DEFAULT_METRICS_ADDRESS = "127.0.0.1"
#: Where completion callbacks are published, after the key prefix: a queue of the deployment's
#: own name that none of its workers consumes (they refuse to), for the host app's workers.
ON_DONE_QUEUE_SUFFIX = "callbacks"
DEFAULT_ON_DONE_QUEUE = f"engage.{ON_DONE_QUEUE_SUFFIX}"
#: How long (ms) a ledger write waits for ``ENGAGE_REPLICA_ACKS`` replicas to hold it.
DEFAULT_REPLICA_ACK_TIMEOUT = 500.0

#: Requests one API token may make per second (``engage-sms api``); 0: no limit.
DEFAULT_HTTP_RATE_LIMIT = 100

TRANSPORTS = ("rest", "soap")
UNKNOWN_OUTCOME_ACTIONS = ("dead_letter", "retry")


@dataclass(frozen=True)
class RetrySettings:
    """How often and how long each class of error is retried."""

    base_delay: float = DEFAULT_RETRY_BASE_DELAY
    backoff: float = DEFAULT_RETRY_BACKOFF
    max_delay: float = DEFAULT_RETRY_MAX_DELAY
    max_attempts: int = DEFAULT_RETRY_MAX_ATTEMPTS
    max_total: float = DEFAULT_RETRY_MAX_TOTAL
    unknown_recipient_retries: int = DEFAULT_UNKNOWN_RECIPIENT_RETRIES
    unknown_recipient_delay: float = DEFAULT_UNKNOWN_RECIPIENT_DELAY
    unknown_error_retries: int = DEFAULT_UNKNOWN_ERROR_RETRIES
    on_unknown_outcome: str = "dead_letter"
    max_redeliveries: int = DEFAULT_MAX_REDELIVERIES

    @property
    def window(self) -> float:
        """The longest time a send can spend retrying."""
        return self.max_total + self.max_delay


@dataclass(frozen=True)
class HttpSettings:
    """The HTTP front door (``engage-sms api``): limits per API token."""

    #: Requests per second per token (``ENGAGE_HTTP_RATE_LIMIT``); 0: no limit.
    rate_limit: int = DEFAULT_HTTP_RATE_LIMIT


@dataclass(frozen=True)
class EngageSettings:
    """Where Engage is and how to log in: needed only by processes that call Engage."""

    base_url: str
    username: str
    password: str = field(repr=False)
    transport: str = "rest"


@dataclass(frozen=True)
class Settings:
    """Everything the package needs to run, validated."""

    #: None in a process that only enqueues (``ENGAGE_BASE_URL`` not set).
    engage: EngageSettings | None = None
    broker_url: str = DEFAULT_BROKER_URL
    result_backend: str | None = None
    redis_url: str = DEFAULT_BROKER_URL
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT
    rate_limit: float = DEFAULT_RATE_LIMIT
    rate_burst: float = DEFAULT_RATE_BURST
    rate_max_wait: float = DEFAULT_RATE_MAX_WAIT
    contact_cache_ttl: float = DEFAULT_CONTACT_CACHE_TTL
    visibility_timeout: float = DEFAULT_VISIBILITY_TIMEOUT
    dlq_max_entries: int = DEFAULT_DLQ_MAX_ENTRIES
    dlq_max_age: float = DEFAULT_DLQ_MAX_AGE
    key_grace: float = DEFAULT_KEY_GRACE
    lease_margin: float = DEFAULT_LEASE_MARGIN
    retry: RetrySettings = field(default_factory=RetrySettings)
    key_prefix: str = "engage"
    #: Port of the worker's Prometheus endpoint; None: no endpoint.
    metrics_port: int | None = None
    #: Address the worker's endpoint and ``engage-sms metrics`` listen on.
    metrics_address: str = DEFAULT_METRICS_ADDRESS
    #: TOML file of periodic prepared sends run by celery beat; None: no schedules.
    schedule_file: str | None = None
    #: How mobile numbers are read at enqueue: ``ENGAGE_DEFAULT_REGION`` (None: international
    #: only) and ``ENGAGE_NUMBER_TYPES`` (see tasks.numbers.DEFAULT_NUMBER_TYPES for the policy).
    numbers: NumberPolicy = field(default_factory=NumberPolicy)
    #: Publish Celery's ``task-sent`` event at enqueue (Flower then lists tasks still queued).
    #: Off by default: it is a third Redis round trip and ~0.3 ms per enqueue.
    sent_events: bool = False
    #: Seconds between two stuck-send sweeps of one worker (:mod:`tasks.worker.recovery`).
    sweep_interval: float = DEFAULT_SWEEP_INTERVAL
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
    replica_ack_timeout: float = DEFAULT_REPLICA_ACK_TIMEOUT
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
    retry = RetrySettings(
        base_delay=env.number("ENGAGE_RETRY_BASE_DELAY", DEFAULT_RETRY_BASE_DELAY, minimum=0),
        backoff=env.number("ENGAGE_RETRY_BACKOFF", DEFAULT_RETRY_BACKOFF, minimum=1),
        max_delay=env.number("ENGAGE_RETRY_MAX_DELAY", DEFAULT_RETRY_MAX_DELAY, minimum=0),
        max_attempts=env.integer("ENGAGE_RETRY_MAX_ATTEMPTS", DEFAULT_RETRY_MAX_ATTEMPTS, 1),
        max_total=env.number("ENGAGE_RETRY_MAX_TOTAL", DEFAULT_RETRY_MAX_TOTAL, minimum=0),
        unknown_recipient_retries=env.integer(
            "ENGAGE_UNKNOWN_RECIPIENT_RETRIES", DEFAULT_UNKNOWN_RECIPIENT_RETRIES, 0
        ),
        unknown_recipient_delay=env.number(
            "ENGAGE_UNKNOWN_RECIPIENT_DELAY", DEFAULT_UNKNOWN_RECIPIENT_DELAY, minimum=0
        ),
        unknown_error_retries=env.integer(
            "ENGAGE_UNKNOWN_ERROR_RETRIES", DEFAULT_UNKNOWN_ERROR_RETRIES, 0
        ),
        on_unknown_outcome=env.choice(
            "ENGAGE_ON_UNKNOWN_OUTCOME", "dead_letter", UNKNOWN_OUTCOME_ACTIONS
        ),
        max_redeliveries=env.integer("ENGAGE_MAX_REDELIVERIES", DEFAULT_MAX_REDELIVERIES, 1),
    )
    # One deployment per prefix: its Redis keys, its queues and its callback queue.
    prefix = env.optional_text("ENGAGE_KEY_PREFIX") or "engage"
    settings = Settings(
        engage=_engage_settings(env),
        broker_url=broker_url,
        result_backend=env.optional_text("CELERY_RESULT_BACKEND"),
        redis_url=redis_url,
        connect_timeout=env.number("ENGAGE_CONNECT_TIMEOUT", DEFAULT_CONNECT_TIMEOUT, minimum=0.1),
        read_timeout=env.number("ENGAGE_READ_TIMEOUT", DEFAULT_READ_TIMEOUT, minimum=0.1),
        rate_limit=env.number("ENGAGE_RATE_LIMIT", DEFAULT_RATE_LIMIT, minimum=0),
        rate_burst=env.number("ENGAGE_RATE_BURST", DEFAULT_RATE_BURST, minimum=1),
        rate_max_wait=env.number("ENGAGE_RATE_MAX_WAIT", DEFAULT_RATE_MAX_WAIT, minimum=0),
        contact_cache_ttl=env.number(
            "ENGAGE_CONTACT_CACHE_TTL", DEFAULT_CONTACT_CACHE_TTL, minimum=0
        ),
        visibility_timeout=env.number(
            "ENGAGE_VISIBILITY_TIMEOUT", DEFAULT_VISIBILITY_TIMEOUT, minimum=1
        ),
        dlq_max_entries=env.integer("ENGAGE_DLQ_MAX_ENTRIES", DEFAULT_DLQ_MAX_ENTRIES, 1),
        dlq_max_age=env.number("ENGAGE_DLQ_MAX_AGE_DAYS", DEFAULT_DLQ_MAX_AGE / 86400, minimum=0)
        * 86400,
        key_grace=env.number("ENGAGE_KEY_GRACE", DEFAULT_KEY_GRACE, minimum=0),
        lease_margin=env.number("ENGAGE_LEASE_MARGIN", DEFAULT_LEASE_MARGIN, minimum=0.5),
        retry=retry,
        key_prefix=prefix,
        metrics_port=env.optional_port("ENGAGE_METRICS_PORT"),
        metrics_address=env.optional_text("ENGAGE_METRICS_ADDRESS") or DEFAULT_METRICS_ADDRESS,
        schedule_file=env.optional_text("ENGAGE_SCHEDULE_FILE"),
        sent_events=env.choice("ENGAGE_SENT_EVENTS", "off", ("off", "on")) == "on",
        numbers=_number_policy(env),
        sweep_interval=env.number("ENGAGE_SWEEP_INTERVAL", DEFAULT_SWEEP_INTERVAL, minimum=1),
        on_done_task=env.task_name("ENGAGE_ON_DONE_TASK"),
        on_done_queue=env.optional_text("ENGAGE_ON_DONE_QUEUE")
        or f"{prefix}.{ON_DONE_QUEUE_SUFFIX}",
        policy=load_policy(env),
        **_high_availability(env, broker_url, redis_url),
        http=HttpSettings(
            rate_limit=env.integer("ENGAGE_HTTP_RATE_LIMIT", DEFAULT_HTTP_RATE_LIMIT, 0)
        ),
    )
    _check_consistency(settings)
    return settings


def broker_variable(environ: Mapping[str, str]) -> str:
    """The variable naming this package's broker: ENGAGE_BROKER_URL when set, else Celery's."""
    given = Environment(environ).optional_text("ENGAGE_BROKER_URL")
    return "ENGAGE_BROKER_URL" if given else "CELERY_BROKER_URL"


def _engage_settings(env: Environment) -> EngageSettings | None:
    """Engage's address and login: all or nothing (a web process that only enqueues sets none)."""
    transport = env.choice("ENGAGE_TRANSPORT", "rest", TRANSPORTS)
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
        "replica_ack_timeout": env.number(
            "ENGAGE_REPLICA_ACK_TIMEOUT", DEFAULT_REPLICA_ACK_TIMEOUT, minimum=1
        ),
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
