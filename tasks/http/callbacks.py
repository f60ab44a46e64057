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
backoff up to :data:`MAX_FAILURES` times. A state counts as delivered only after a 2xx, so a
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
import requests

from tasks.http.keys import HttpKeys
from tasks.http.sends import SendOwners
from tasks.http.tokens import TokenStore
from tasks.state.ledger import DeliveryLedger
from tasks.urls import redact_url

logger = logging.getLogger("engage.http.callbacks")

#: The header carrying the signature: ``t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">``.
SIGNATURE_HEADER = "Engage-Signature"
#: How far (s) a callback's signing time may be from the receiver's clock for :func:`verify`.
SIGNATURE_TOLERANCE = 300
#: Failed deliveries of one state before it is given up (about a day of backoff).
MAX_FAILURES = 20
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
    ) -> None:
        self._redis = client
        self._keys = keys
        self._ledger = ledger
        self._owners = owners
        self._tokens = tokens
        self._post = post
        source = Path(__file__).with_name("claim_due.lua").read_text(encoding="utf-8")
        self._claim = client.register_script(source)

    def run_once(self, now: float | None = None) -> int:
        """Look at every callback due now; how many POSTs succeeded."""
        now = time.time() if now is None else now
        due = self._claim(keys=[self._keys.callbacks], args=[repr(now), LEASE, BATCH])
        delivered = 0
        for raw in due:
            key = raw.decode() if isinstance(raw, bytes) else str(raw)
            delivered += self._handle(key, now)
        return delivered

    def _handle(self, key: str, now: float) -> int:
        owner = self._owners.get(key)
        status = self._ledger.status(key)
        if owner is None or owner.callback_url is None or status["state"] == "unknown":
            self._forget(key)  # expired with the ledger's record
            return 0
        self._owners.follow_ledger(key)
        progress = self._progress(key)
        if status["state"] not in FINAL:
            age = max(0.0, now - float(progress.get("since", now)))
            self._again(key, now + min(POLL_MOST, POLL_SOON + age / 10))
            return 0
        marker = f"{status['state']}@{status.get('updated_at')}"
        if progress.get("delivered") == marker:
            self._after_delivery(key, status["state"], now)
            return 0
        return self._deliver(key, owner.token_id, owner.callback_url, status, now=now)

    def _deliver(
        self, key: str, token_id: str, url: str, status: dict[str, Any], *, now: float
    ) -> int:
        marker = f"{status['state']}@{status.get('updated_at')}"
        token = self._tokens.get(token_id)
        if token is None:
            logger.warning("callback of %s dropped: its token was revoked", key)
            self._forget(key)
            return 0
        body = encode(status)
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(token.callback_secret, body),
            "User-Agent": "engage-sms-callback",
        }
        code = self._post(url, body, headers)
        if 200 <= code < 300:
            self._redis.hset(self._keys.callback(key), mapping={"delivered": marker, "fails": 0})
            self._after_delivery(key, status["state"], now)
            return 1
        fails = int(self._redis.hincrby(self._keys.callback(key), "fails", 1))
        if fails >= MAX_FAILURES:
            logger.error("callback of %s given up after %d failures", key, fails)
            self._forget(key)
            return 0
        delay = min(MAX_RETRY, FIRST_RETRY * 2 ** (fails - 1)) * random.uniform(1.0, 1.2)
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

    def _run(self) -> None:
        away = 0  # rounds in a row Redis did not answer
        while not self._stop.is_set():
            try:
                self._dispatcher.run_once()
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
