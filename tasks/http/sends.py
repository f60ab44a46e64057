"""``POST /v1/sends`` bodies, and which token sent which key (with its callback URL).

A body is read strictly: a JSON object of the known fields only, each checked here or by
:func:`tasks.core.request.build_send_request`, whose InvalidSendRequest names the field at
fault. The HTTP record of a key is written once (``SET NX``) before the enqueue: the same key from
another token, with another callback URL or in another lane (priority), is a reused key, never a
second send.
"""

from __future__ import annotations

import ipaddress
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import redis

from tasks.core.errors import InvalidSendRequest
from tasks.core.numbers import NumberPolicy
from tasks.core.request import SendRequest, build_send_request
from tasks.core.send_options import DEFAULT_PRIORITY, Priority, parse_priority
from tasks.http.keys import HttpKeys

#: Largest request body accepted (413 above it).
MAX_BODY_BYTES = 64 * 1024
#: Longest callback URL accepted.
MAX_URL_LENGTH = 2048
#: The fields a send body may carry.
IDENTIFIER_FIELDS = ("mobile", "email", "app_alias", "external_id", "recipient_id")
#: The sending policy's fields of a send (README: Sending policy).
POLICY_FIELDS = ("expires_in", "send_by", "create_contact")
FIELDS = frozenset(
    {"message_id", *IDENTIFIER_FIELDS, "parameters", "priority", "callback_url", *POLICY_FIELDS}
)


@dataclass(frozen=True)
class SendBody:
    """A validated ``POST /v1/sends`` body."""

    request: SendRequest
    #: The identifier and parameters as given, for :func:`tasks.api.send_prepared_sms`.
    arguments: dict[str, Any]
    priority: Priority
    callback_url: str | None
    #: ``expires_in``, ``send_by`` (a datetime) and ``create_contact``, for send_prepared_sms.
    policy: dict[str, Any] = field(default_factory=dict)


def parse_send_body(raw: bytes, numbers: NumberPolicy) -> SendBody:
    """The body as a send; InvalidSendRequest naming the field at fault (None: the body)."""
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InvalidSendRequest("body", f"is not JSON ({err})") from None
    except (RecursionError, ValueError):  # too deep, or an integer past Python's 4300 digits
        raise InvalidSendRequest("body", "is nested too deeply or has a number too long") from None
    if not isinstance(data, dict):
        raise InvalidSendRequest("body", "must be a JSON object")
    for name in sorted(data):
        if name not in FIELDS:
            raise InvalidSendRequest(name, "is not a field of a send")
    if "message_id" not in data:
        raise InvalidSendRequest("message_id", "is required")
    parameters = data.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise InvalidSendRequest("parameters", "must be an object of names to strings")
    arguments = {name: data[name] for name in IDENTIFIER_FIELDS if data.get(name) is not None}
    for name, value in arguments.items():
        if name == "recipient_id" and isinstance(value, bool):
            raise InvalidSendRequest(name, "must be a positive integer")
        if name != "recipient_id" and not isinstance(value, str):
            raise InvalidSendRequest(name, "must be a string")
    request = build_send_request(
        data["message_id"], **arguments, parameters=parameters, numbers=numbers
    )
    priority = parse_priority(data.get("priority", DEFAULT_PRIORITY))
    callback = data.get("callback_url")
    return SendBody(
        request=request,
        arguments={**arguments, "parameters": parameters},
        priority=priority,
        callback_url=None if callback is None else validate_callback_url(callback),
        policy=_policy_fields(data),
    )


def _policy_fields(data: dict[str, Any]) -> dict[str, Any]:
    """The sending policy's fields as send_prepared_sms takes them (it checks the values)."""
    policy = {name: data[name] for name in POLICY_FIELDS if data.get(name) is not None}
    if "send_by" in policy:
        text = policy["send_by"]
        try:
            policy["send_by"] = datetime.fromisoformat(text) if isinstance(text, str) else None
        except ValueError:
            policy["send_by"] = None
        if policy["send_by"] is None:
            raise InvalidSendRequest("send_by", "must be an ISO 8601 moment with its offset")
    if "create_contact" in policy and not isinstance(policy["create_contact"], bool):
        raise InvalidSendRequest("create_contact", "must be true or false")
    return policy


def validate_callback_url(url: object) -> str:
    """An ``https://`` URL, or ``http://`` to this machine (loopback) only; else 400."""
    if not isinstance(url, str) or not url:
        raise InvalidSendRequest("callback_url", "must be a URL")
    if len(url) > MAX_URL_LENGTH:
        raise InvalidSendRequest("callback_url", f"must be at most {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018  (raises ValueError for a port that is no number)
    except ValueError:
        raise InvalidSendRequest("callback_url", "is not a valid URL") from None
    if not host:
        raise InvalidSendRequest("callback_url", "needs a host")
    if parts.username is not None or parts.password is not None:
        raise InvalidSendRequest("callback_url", "must not carry a user name or password")
    if any(c.isspace() or ord(c) < 0x20 for c in url):
        raise InvalidSendRequest("callback_url", "must not contain spaces or control characters")
    if parts.scheme == "https":
        return url
    if parts.scheme == "http" and is_loopback(host):
        return url
    raise InvalidSendRequest(
        "callback_url", "must be https:// (http:// only to localhost or a loopback address)"
    )


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class SendOwner:
    """Which token sent a key over HTTP, and where its final status goes."""

    token_id: str
    callback_url: str | None
    #: The lane asked for: the same key in another lane is another request (422). None: a
    #: record that names no lane, which matches any lane.
    priority: str | None = None

    def to_json(self) -> str:
        """The stored form."""
        return json.dumps(
            {"token": self.token_id, "callback_url": self.callback_url, "priority": self.priority}
        )

    def same_request(self, other: SendOwner | None) -> bool:
        """True when ``other`` is this token's request with the same callback URL and lane."""
        if other is None or (other.token_id, other.callback_url) != (
            self.token_id,
            self.callback_url,
        ):
            return False
        return None in (self.priority, other.priority) or self.priority == other.priority


@dataclass(frozen=True)
class OwnerClaim:
    """What :meth:`SendOwners.claim` found."""

    #: This request wrote the record: it is the first over HTTP for the key.
    recorded: bool
    #: The record that was there (when not ``recorded``).
    existing: SendOwner | None
    #: The ledger knew the key when the record was written: taken before, not over HTTP.
    key_was_taken: bool


def _owner(raw: bytes | str | None) -> SendOwner | None:
    if raw is None:
        return None
    data = json.loads(raw)
    return SendOwner(
        token_id=data["token"], callback_url=data.get("callback_url"), priority=data.get("priority")
    )


class SendOwners:
    """The HTTP record of each key sent over HTTP (kept as long as the ledger's record)."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        keys: HttpKeys,
        retention: float,
        ledger_record: Callable[[str], str],
    ) -> None:
        self._redis = client
        self._keys = keys
        self._retention_ms = int(retention * 1000)
        self._ledger_record = ledger_record

    def claim(self, key: str, owner: SendOwner, ledger_record: str) -> OwnerClaim:
        """Record ``owner`` for ``key`` unless a record is there; and, in the same transaction,
        whether the ledger knew ``key`` already (``ledger_record`` names its hash)."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.set(self._keys.send(key), owner.to_json(), nx=True, px=self._retention_ms)
        pipe.exists(ledger_record)
        pipe.get(self._keys.send(key))
        wrote, known, current = pipe.execute()
        if wrote:
            return OwnerClaim(recorded=True, existing=None, key_was_taken=bool(known))
        return OwnerClaim(recorded=False, existing=_owner(current), key_was_taken=bool(known))

    def get(self, key: str) -> SendOwner | None:
        """The HTTP record of ``key``, or None (not sent over HTTP, or expired)."""
        return _owner(self._redis.get(self._keys.send(key)))

    def release(self, key: str, owner: SendOwner) -> None:
        """Drop the record this request wrote for a key that is not its to take (the ledger
        knew it before: enqueued by the Python API or the CLI)."""
        if self.get(key) == owner:
            self._redis.delete(self._keys.send(key))

    def follow_ledger(self, key: str) -> None:
        """Keep the record of ``key`` and its callback progress as long as the ledger keeps the
        send: longer than the retention they were written with once it is dead-lettered (kept
        for ENGAGE_DLQ_MAX_AGE_DAYS, replayable all that time)."""
        ledger_ttl = int(self._redis.pttl(self._ledger_record(key)))
        if ledger_ttl <= self._retention_ms:
            return
        pipe = self._redis.pipeline(transaction=False)
        for name in (self._keys.send(key), self._keys.callback(key)):
            pipe.pexpire(name, ledger_ttl)
        pipe.execute()

    def watch_callback(self, key: str, now: float | None = None) -> None:
        """Have the callback dispatcher look at ``key`` from now on."""
        now = time.time() if now is None else now
        pipe = self._redis.pipeline(transaction=False)
        pipe.hset(self._keys.callback(key), "since", repr(now))
        pipe.pexpire(self._keys.callback(key), self._retention_ms)
        pipe.zadd(self._keys.callbacks, {key: now})
        pipe.execute()
