"""Signed callbacks: each send's final status POSTed to the ``callback_url`` it was given.

The body is the status :func:`tasks.api.delivery_status` returns (what ``on_done`` gets: masked,
with the key), as compact JSON. The header ``Engage-Signature: t=<unix seconds>,v1=<hex>`` carries
when it was signed and the HMAC-SHA256 of ``<t>.<body>`` (the exact body bytes) under the sending
token's callback secret (shown once, with the token): a receiver that checks the signature and
that ``t`` is recent (:data:`SIGNATURE_TOLERANCE`) refuses a captured callback replayed later.
Each try is signed anew, with its own time.

A dispatcher thread in each ``engage-sms api`` process looks at the keys filed in
``{p}:http:callbacks`` (by :meth:`tasks.http.sends.SendOwners.watch_callback`): a send still
under way is looked at again shortly; a final state not yet delivered is POSTed, and a failure
(no answer, a status other than 2xx, a redirect: never followed) is retried with exponential
backoff up to :data:`MAX_FAILURES` times. The POSTs themselves run in a small pool
(:data:`POST_WORKERS` threads), at most :data:`PER_DESTINATION` at once to one host and port: a
receiver that hangs holds that many threads until :data:`TIMEOUT` ends each try, and every other
receiver's callbacks go on meanwhile (a callback whose receiver is busy is looked at again in
:data:`BUSY_AGAIN` s, no failure counted). A state counts as delivered only after a 2xx, so a
process that dies in between delivers it again: at least once. A dead-lettered send stays
watched: after a replay its next final state is delivered too, as ``on_done`` does. Receivers
deduplicate by ``key`` and ``state``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import redis
import requests

from tasks.core.urls import redact_url
from tasks.http.keys import HttpKeys
from tasks.http.sends import SendOwners
from tasks.http.tokens import TokenStore
from tasks.state.ledger import DeliveryLedger

logger = logging.getLogger("engage.http.callbacks")

#: The header carrying the signature: ``t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">``.
SIGNATURE_HEADER = "Engage-Signature"
#: How far (s) a callback's signing time may be from the receiver's clock for :func:`verify`.
SIGNATURE_TOLERANCE = 300
#: Failed deliveries of one state before it is given up: 34 waits, 1 s doubling to an hour,
#: about a day in all (23 - 28 h with the jitter; :func:`retry_delay`).
MAX_FAILURES = 35
#: Backoff after the first failure, and its ceiling.
FIRST_RETRY = 1.0
MAX_RETRY = 3600.0
#: How soon a send still under way is looked at again (growing with its age, up to the most).
POLL_SOON, POLL_MOST = 0.5, 10.0
#: How often a delivered dead letter is looked at again for a replay.
DEAD_LETTER_WATCH = 30.0
#: How long a dispatcher holds the callbacks it took before another process may take them.
LEASE = 60.0
#: Callbacks taken per round.
BATCH = 100
#: Connect and read timeouts of a callback POST.
TIMEOUT = (3.0, 10.0)
FINAL = ("sent", "dead_lettered", "expired", "capped", "suppressed", "cancelled")
#: Final states no replay moves on (a dead letter may be replayed; the policy's ends may not).
SETTLED = ("sent", "expired", "capped", "suppressed", "cancelled")
#: Longest wait between rounds while Redis does not answer.
REDIS_AWAY_WAIT = 5.0
#: Threads POSTing callbacks in one process, and how many of them one host and port may hold.
POST_WORKERS = 8
PER_DESTINATION = 2
#: A callback due while its receiver (or the pool) is busy is looked at again this much later.
BUSY_AGAIN = 1.0


def retry_delay(fails: int) -> float:
    """The wait (s) after a state's ``fails``-th failed delivery, before jitter (up to +20 %)."""
    return min(MAX_RETRY, FIRST_RETRY * 2.0 ** (fails - 1))


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), b"%d." % timestamp + body, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: float | None = None) -> str:
    """The signature header's value for ``body`` signed at ``timestamp`` (now by default):
    ``t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">``."""
    t = int(time.time() if timestamp is None else timestamp)
    return f"t={t},v1={_digest(secret, t, body)}"


def verify(
    secret: str,
    body: bytes,
    header: str,
    *,
    now: float | None = None,
    tolerance: float = SIGNATURE_TOLERANCE,
) -> bool:
    """True when ``header`` signs ``body`` under ``secret`` (constant time) at a time within
    ``tolerance`` seconds of ``now``: a callback replayed later than that is refused."""
    fields: dict[str, list[str]] = {}
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        fields.setdefault(name, []).append(value)
    stamps = fields.get("t", [])
    if len(stamps) != 1 or not stamps[0].isdigit():
        return False
    t = int(stamps[0])
    now = time.time() if now is None else now
    if abs(now - t) > tolerance:
        return False
    expected = _digest(secret, t, body)
    return any(hmac.compare_digest(expected, given) for given in fields.get("v1", []))


def encode(status: dict[str, Any]) -> bytes:
    """The body of a callback: the status as compact JSON."""
    return json.dumps(status, separators=(",", ":"), sort_keys=True).encode()


Post = Callable[[str, bytes, dict[str, str]], int]


def post_with(session: requests.Session) -> Post:
    """A POST that returns the status code (0 when no answer came), never following redirects."""

    def post(url: str, body: bytes, headers: dict[str, str]) -> int:
        try:
            answer = session.post(
                url, data=body, headers=headers, timeout=TIMEOUT, allow_redirects=False
            )
        except requests.RequestException as err:
            logger.warning("callback to %s: no answer (%s)", redact_url(url), type(err).__name__)
            return 0
        answer.close()
        return answer.status_code

    return post


class CallbackDispatcher:
    """Delivers the final statuses of sends that asked for a callback URL."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        keys: HttpKeys,
        ledger: DeliveryLedger,
        owners: SendOwners,
        tokens: TokenStore,
        post: Post,
        workers: int = POST_WORKERS,
        per_destination: int = PER_DESTINATION,
    ) -> None:
        self._redis = client
        self._keys = keys
        self._ledger = ledger
        self._owners = owners
        self._tokens = tokens
        self._post = post
        source = Path(__file__).with_name("claim_due.lua").read_text(encoding="utf-8")
        self._claim = client.register_script(source)
        self._workers = workers
        self._per_destination = per_destination
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="callback-post")
        self._lock = threading.Lock()
        #: POSTs under way, by destination (host and port), and the keys they are for.
        self._busy: Counter[str] = Counter()
        self._posting: set[str] = set()

    def run_once(self, now: float | None = None, *, wait: bool = True) -> int:
        """Look at every callback due now. Waiting, how many POSTs succeeded; else how many
        were started (the pool finishes them; the next rounds go on meanwhile)."""
        now = time.time() if now is None else now
        due = self._claim(keys=[self._keys.callbacks], args=[repr(now), LEASE, BATCH])
        started: list[Future[int]] = []
        for raw in due:
            key = raw.decode() if isinstance(raw, bytes) else str(raw)
            posting = self._handle(key, now)
            if posting is not None:
                started.append(posting)
        if not wait:
            return len(started)
        return sum(posting.result() for posting in started)

    def close(self) -> None:
        """Stop taking POSTs; those under way end on their own (their keys come due again)."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _handle(self, key: str, now: float) -> Future[int] | None:
        owner = self._owners.get(key)
        status = self._ledger.status(key)
        if owner is None or owner.callback_url is None or status["state"] == "unknown":
            self._forget(key)  # expired with the ledger's record
            return None
        self._owners.follow_ledger(key)
        progress = self._progress(key)
        if status["state"] not in FINAL:
            age = max(0.0, now - float(progress.get("since", now)))
            self._again(key, now + min(POLL_MOST, POLL_SOON + age / 10))
            return None
        marker = f"{status['state']}@{status.get('updated_at')}"
        if progress.get("delivered") == marker:
            self._after_delivery(key, status["state"], now)
            return None
        return self._deliver(key, owner.token_id, owner.callback_url, status, now=now)

    def _deliver(
        self, key: str, token_id: str, url: str, status: dict[str, Any], *, now: float
    ) -> Future[int] | None:
        token = self._tokens.get(token_id)
        if token is None:
            logger.warning("callback of %s dropped: its token was revoked", key)
            self._forget(key)
            return None
        destination = urlsplit(url).netloc.lower()
        with self._lock:
            busy = (
                key in self._posting
                or self._busy[destination] >= self._per_destination
                or self._busy.total() >= self._workers
            )
            if not busy:
                self._busy[destination] += 1
                self._posting.add(key)
        if busy:
            self._again(key, now + BUSY_AGAIN)
            return None
        body = encode(status)
        try:
            return self._pool.submit(
                self._post_and_record, key, url, body, token.callback_secret, status, now
            )
        except RuntimeError:  # the pool is shut down: the process is stopping
            self._done(key, destination)
            return None

    def _done(self, key: str, destination: str) -> None:
        with self._lock:
            self._busy[destination] -= 1
            self._posting.discard(key)

    def _post_and_record(  # noqa: PLR0917  (one call site, the pool's)
        self, key: str, url: str, body: bytes, secret: str, status: dict[str, Any], now: float
    ) -> int:
        """In a pool thread: POST, then record the delivery or when to try again."""
        started = time.monotonic()
        try:
            headers = {
                "Content-Type": "application/json",
                SIGNATURE_HEADER: sign(secret, body),
                "User-Agent": "engage-sms-callback",
            }
            code = self._post(url, body, headers)
            # The next time is reckoned from when the answer came, not when the round began.
            return self._record(key, code, status, now + (time.monotonic() - started))
        except Exception:  # a Redis failure here leaves the key due again after the lease
            logger.exception("callback of %s: recording the delivery failed", key)
            return 0
        finally:
            self._done(key, urlsplit(url).netloc.lower())

    def _record(self, key: str, code: int, status: dict[str, Any], now: float) -> int:
        marker = f"{status['state']}@{status.get('updated_at')}"
        if 200 <= code < 300:
            self._redis.hset(self._keys.callback(key), mapping={"delivered": marker, "fails": 0})
            self._after_delivery(key, status["state"], now)
            return 1
        fails = int(self._redis.hincrby(self._keys.callback(key), "fails", 1))
        if fails >= MAX_FAILURES:
            logger.error("callback of %s given up after %d failures", key, fails)
            self._forget(key)
            return 0
        delay = retry_delay(fails) * random.uniform(1.0, 1.2)
        logger.warning("callback of %s failed (HTTP %s); again in %.0f s", key, code, delay)
        self._again(key, now + delay)
        return 0

    def _progress(self, key: str) -> dict[str, str]:
        raw = self._redis.hgetall(self._keys.callback(key))
        return {
            (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in raw.items()
        }

    def _after_delivery(self, key: str, state: str, now: float) -> None:
        if state in SETTLED:
            self._forget(key)
        else:  # a replay may follow: its next final state is delivered too
            self._again(key, now + DEAD_LETTER_WATCH)

    def _again(self, key: str, when: float) -> None:
        self._redis.zadd(self._keys.callbacks, {key: when})

    def _forget(self, key: str) -> None:
        pipe = self._redis.pipeline(transaction=False)
        pipe.zrem(self._keys.callbacks, key)
        pipe.delete(self._keys.callback(key))
        pipe.execute()


class DispatcherThread:
    """Runs :meth:`CallbackDispatcher.run_once` every ``interval`` seconds until stopped."""

    def __init__(self, dispatcher: CallbackDispatcher, *, interval: float = 0.25) -> None:
        self._dispatcher = dispatcher
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="callbacks", daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop after the current round."""
        self._stop.set()
        self._thread.join(timeout=30)
        self._dispatcher.close()

    def _run(self) -> None:
        away = 0  # rounds in a row Redis did not answer
        while not self._stop.is_set():
            try:
                self._dispatcher.run_once(wait=False)
                if away:
                    logger.info("callbacks: Redis answers again")
                away = 0
            except redis.RedisError as err:  # Redis away: the callbacks wait in Redis
                if not away:
                    logger.warning("callbacks: Redis did not answer (%s)", type(err).__name__)
                away += 1
            except Exception:  # a bug must not end the thread and stop every callback
                logger.exception("callbacks: round failed")
            # Redis away: look again less often (up to REDIS_AWAY_WAIT), not every round.
            wait = (
                min(self._interval * 2 ** min(away, 16), REDIS_AWAY_WAIT)
                if away
                else self._interval
            )
            self._stop.wait(wait)
