"""Every Redis key this package writes, named in one place: :class:`RedisKeys`.

All keys sit under one prefix (``ENGAGE_KEY_PREFIX``, default ``engage``), ``{p}`` below. Owner
is the module under ``tasks/state/`` (``housekeeping``: ``tasks/worker/``) that writes it::

    Key                                 Type    Owner               Holds (expiry)
    {p}:send:{key}                      hash    ledger              one send's record (retention,
                                                                    longer while dead-lettered)
    {p}:inflight                        zset    ledger              unfinished keys by last change
    {p}:dlq                             zset    dead_letters        dead-lettered keys by time
    {p}:dlq:entries                     hash    dead_letters        key -> entry (JSON)
    {p}:dlq:reasons                     hash    dead_letters        key -> reason
    {p}:dlq:over_bound                  zset    dead_letters        keys whose entry left at the
                                                                    size bound, by time (max age)
    {p}:rate:engage                     string  rate_limit          next free slot, µs (until past)
    {p}:rate:engage:served:{lane}       string  rate_limit          last slot given to a lower lane,
                                                                    µs (starvation limit)
    {p}:rate:engage:budget              hash    rate_limit          the one Engage budget (none)
    {p}:callbacks                       zset    callbacks           final sends whose callback is
                                                                    not yet published, by when
    {p}:auth_failed:{hmac16}            string  credentials         credentials refused (60 s)
    {p}:contact:{TYPE}:{hmac32}         string  contact_cache       Engage contact id (cache TTL)
    {p}:housekeeping:sweep              string  housekeeping        one sweep at a time (55 s)
    {p}:lane_consumers:{lane}           zset    lane_consumers      workers consuming the lane,
                                                                    by when last seen
    {p}:hmac_secret                     string  hashing             keyed-digest secret (none)
    {p}:suppressed                      hash    suppressions        opted-out recipients: keyed
                                                                    digest -> masked form, when
    {p}:cap:{lane}:{hmac32}             zset    recipient_caps      a recipient's sends of a lane
                                                                    by Redis time, ms (window)
    {p}:deferred                        zset    deferrals           sends held for quiet hours,
                                                                    by when they may go
    {p}:contact_create:{TYPE}:{hmac32}  string  delivery (policy)   one worker creates a contact
                                                                    in Engage at a time (120 s)
    {p}:primary:{role}                  string  failover            the Redis primary last seen
                                                                    (run id, replication id)
    {p}:attempts:{key}                  list    attempts            one send's last Engage calls
                                                                    (the record's expiry)
    {p}:probe:writable                  string  worker pipeline     a write that tells Redis takes
                                                                    writes again (10 s)

``{key}`` is an idempotency key: the caller's, ``auto:<uuid>``, or for a scheduled send
``beat:<schedule>:<slot>:<hmac16>`` (:func:`tasks.worker.beat_schedule.run_key`). Celery's own
keys (broker queues, results) are Celery's and not listed. The dead-letter scripts change ledger
records too, in the same script as their own keys; the scripts that record a final state
(``mark_sent``, ``dlq_add``) file the callback in ``{p}:callbacks`` in the same step.

Keyed digests: the opt-out list's fields, the cap and contact-creation keys name a recipient
only by a keyed digest too (a list of opted-out numbers in clear is a list of real numbers).
Keyed digests: three names carry a digest of something private, the contact cache's (a phone
number or e-mail address), the credentials flag's (user name and password) and beat's
idempotency keys (the recipient). An unsalted SHA-256 of a phone number is reversed by hashing
every possible number, so these are HMAC-SHA256 under a secret made on first use
(``secrets.token_hex(32)``, ``SET NX``, then ``GET``) and cached per process. Key names travel
where values do not (``SCAN`` output, monitoring tools, the slow log, log lines naming an
idempotency key); the secret keeps them opaque there. It is no access control: whoever can read
``{p}:hmac_secret`` can still try every number, and can read the ledger's requests anyway.
Never delete the secret alone: a new one orphans cached ids and the credentials flag (harmless)
and gives a schedule run that is already under way new keys, so a repeated tick would send again.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RedisKeys:
    """The names of this package's Redis keys under one prefix (see the module's table)."""

    prefix: str = "engage"

    def send(self, key: str) -> str:
        """The ledger hash of one idempotency key."""
        return f"{self.prefix}:send:{key}"

    @property
    def inflight(self) -> str:
        """Sorted set of keys not yet sent or dead-lettered, scored by last change."""
        return f"{self.prefix}:inflight"

    @property
    def dlq(self) -> str:
        """Sorted set of dead-lettered keys, scored by when they were dead-lettered."""
        return f"{self.prefix}:dlq"

    @property
    def dlq_entries(self) -> str:
        """Hash of dead-letter entries (JSON) by idempotency key."""
        return f"{self.prefix}:dlq:entries"

    @property
    def dlq_reasons(self) -> str:
        """Hash of dead-letter reasons by idempotency key (depth by reason without parsing)."""
        return f"{self.prefix}:dlq:reasons"

    @property
    def dlq_over_bound(self) -> str:
        """Sorted set of keys whose entry left the store at its size bound (still replayable)."""
        return f"{self.prefix}:dlq:over_bound"

    @property
    def rate_limit(self) -> str:
        """String holding the Engage rate limit's next free slot (GCRA)."""
        return f"{self.prefix}:rate:engage"

    @property
    def rate_budget(self) -> str:
        """Hash of the Engage budget every worker agreed on (rate, burst, spacing in µs)."""
        return f"{self.rate_limit}:budget"

    def rate_served(self, lane: str) -> str:
        """When a lower lane (``normal``, ``bulk``) was last given a slot of the rate limit."""
        return f"{self.rate_limit}:served:{lane}"

    @property
    def callbacks(self) -> str:
        """Sorted set: keys whose completion callback is due, scored by when it became due."""
        return f"{self.prefix}:callbacks"

    def auth_failed(self, digest: str) -> str:
        """The flag that parks sends while the credentials with this keyed digest are refused."""
        return f"{self.prefix}:auth_failed:{digest}"

    def contact(self, id_type: str, digest: str) -> str:
        """The cached contact id of an identifier: its type in clear, its value as a digest."""
        return f"{self.prefix}:contact:{id_type}:{digest}"

    @property
    def sweep_lock(self) -> str:
        """Lock held while one housekeeping sweep runs."""
        return f"{self.prefix}:housekeeping:sweep"

    def lane_consumers(self, lane: str) -> str:
        """Workers that consume a lane, scored by when each last said so."""
        return f"{self.prefix}:lane_consumers:{lane}"

    @property
    def hmac_secret(self) -> str:
        """The secret of the keyed digests in key names."""
        return f"{self.prefix}:hmac_secret"

    @property
    def suppressed(self) -> str:
        """Hash of opted-out recipients: keyed digest -> JSON (masked form, when added)."""
        return f"{self.prefix}:suppressed"

    def recipient_cap(self, lane: str, digest: str) -> str:
        """Sorted set of one recipient's sends in one lane, by Redis time (ms)."""
        return f"{self.prefix}:cap:{lane}:{digest}"

    @property
    def deferred(self) -> str:
        """Sorted set of sends held for quiet hours, scored by when they may go (epoch s)."""
        return f"{self.prefix}:deferred"

    def contact_create(self, id_type: str, digest: str) -> str:
        """Held while one worker creates the contact of an identifier in Engage."""
        return f"{self.prefix}:contact_create:{id_type}:{digest}"

    @property
    def write_probe(self) -> str:
        """A throwaway write: Redis takes writes again (after NOREPLICAS, READONLY)."""
        return f"{self.prefix}:probe:writable"

    def primary(self, role: str) -> str:
        """Which Redis primary (``redis`` or ``broker``) the workers last saw."""
        return f"{self.prefix}:primary:{role}"

    def attempts(self, key: str) -> str:
        """The last Engage calls of one send, one JSON entry each."""
        return f"{self.prefix}:attempts:{key}"
