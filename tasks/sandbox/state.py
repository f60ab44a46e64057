"""What the Engage sandbox knows and remembers: contacts, messages, faults and every call received.

Transport-independent: the REST and SOAP handlers both call :meth:`SandboxState.contact_get` and
:meth:`SandboxState.send_single` and only differ in how they wrap the answer.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

from tasks.sandbox.faults import DELAY, Fault, Faults

DEMO_CONTACTS = (
    {"type": "MOBILE", "value": "48505606707", "contactId": 33457},
    # schedules.example.toml's recipient: example.com never reaches a person on a real tenant.
    {"type": "EMAIL", "value": "ann@example.com", "contactId": 33458},
)
DEMO_MESSAGES = ({"messageId": 23541, "requiredParameters": []},)
#: contact/create's contact fields and the identifier type each one is looked up by.
CREATE_FIELDS = {
    "mobileNumber": "MOBILE",
    "emailAddress": "EMAIL",
    "applicationAlias": "APP_ALIAS",
    "identifier": "EXTERNAL",
}
#: Contacts created through contact/create get ids from here up.
CREATED_IDS_FROM = 900_000


@dataclass
class Call:
    """One request the sandbox received on an Engage path."""

    operation: str
    method: str
    path: str
    query: dict[str, str]
    body: Any
    authorized: bool
    status: int | str
    at: float


@dataclass
class Answer:
    """What an operation decided: an HTTP status and, for errors, Engage's error body."""

    status: int
    body: dict[str, Any] | None = None


class SandboxState:
    """Thread-safe state of one sandbox; every public method may be called from any thread."""

    def __init__(
        self,
        *,
        username: str = "api@example.com",
        password: str = "sandbox-password",  # noqa: S107  (a local test double's default)
        contacts: tuple[dict[str, Any], ...] = DEMO_CONTACTS,
        messages: tuple[dict[str, Any], ...] = DEMO_MESSAGES,
    ) -> None:
        self._credentials = (username, password)
        self._lock = threading.Lock()
        self._seed_contacts = contacts
        self._seed_messages = messages
        self.reset()

    # -- configuration -------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget calls, sends and faults; restore the credentials, seed contacts and messages."""
        self.username, self.password = self._credentials
        with self._lock:
            self.calls: list[Call] = []
            self.sends: Counter[tuple[int, int]] = Counter()
            self.faults = Faults()
            self._rng = random.Random()
            self._contacts: dict[tuple[str, str], int] = {}
            self._contact_ids: set[int] = set()
            self._messages: dict[int, list[str]] = {}
            #: Identifiers contact/create created, in order (type, value).
            self.created: list[tuple[str, str]] = []
        self.add_contacts(self._seed_contacts)
        self.add_messages(self._seed_messages)

    def add_contacts(self, contacts: Any) -> None:
        """Register contacts: ``[{"type": "MOBILE", "value": "...", "contactId": 1}, ...]``."""
        with self._lock:
            for contact in contacts:
                contact_id = int(contact["contactId"])
                self._contacts[(str(contact["type"]), str(contact["value"]))] = contact_id
                self._contact_ids.add(contact_id)

    def add_messages(self, messages: Any) -> None:
        """Register prepared messages: ``[{"messageId": 1, "requiredParameters": [...]}]``."""
        with self._lock:
            for message in messages:
                required = [str(p) for p in message.get("requiredParameters", [])]
                self._messages[int(message["messageId"])] = required

    def set_faults(self, spec: dict[str, Any]) -> None:
        """Replace the fault plan (see :mod:`tasks.sandbox.faults`); ValueError for a bad step."""
        faults = Faults.from_spec(spec)
        with self._lock:
            self.faults = faults
            self._rng = random.Random(faults.random.seed)

    # -- the operations ------------------------------------------------------------------------

    def next_fault(self, operation: str) -> tuple[float, Fault | None]:
        """Delay to apply and the fault for this call, if any."""
        with self._lock:
            delay = self.faults.latency
            step: Fault | None = None
            for key in (operation, "*"):
                steps = self.faults.script.get(key)
                if steps:
                    step = steps.popleft()
                    break
            if step is not None and step.kind == DELAY:
                delay += float(step.argument)
                step = None
            plan = self.faults.random
            if step is None:
                step = plan.pick(self._rng.random(), operation, self._rng.choice)
            if plan.latency_max:
                delay += self._rng.random() * plan.latency_max
            return delay, step

    def contact_get(self, id_type: str, value: str) -> tuple[Answer, int | None]:
        """Engage's contact/get: (answer, contactId or None)."""
        if id_type not in ("EMAIL", "MOBILE", "APP_ALIAS", "EXTERNAL", "ID"):
            return _invalid_parameter("type", id_type), None
        with self._lock:
            if id_type == "ID":
                contact_id = (
                    int(value) if value.isdigit() and int(value) in self._contact_ids else None
                )
            else:
                contact_id = self._contacts.get((id_type, value))
        if contact_id is None:
            return _no_such_object("Contact", "identifier", value), None
        return Answer(200), contact_id

    def contact_create(self, fields: dict[str, Any]) -> tuple[Answer, int | None]:
        """Engage's contact/create: (answer, the new contactId or None).

        The contact object names its identifier by field (``mobileNumber``, ``emailAddress``,
        ``applicationAlias``, ``identifier``); an identifier that is taken answers 400
        ``OBJECT_ALREADY_EXISTS``, as Engage does when another writer won the race. Check and
        insert happen under one lock: the sandbox never holds two contacts for one identifier.
        """
        given = [(t, str(fields[f])) for f, t in CREATE_FIELDS.items() if fields.get(f)]
        if len(given) != 1:
            return _invalid_parameter("contact", "one identifier field"), None
        ((id_type, value),) = given
        with self._lock:
            if (id_type, value) in self._contacts:
                return _already_exists(value), None
            contact_id = max(self._contact_ids, default=CREATED_IDS_FROM) + 1
            contact_id = max(contact_id, CREATED_IDS_FROM)
            self._contacts[(id_type, value)] = contact_id
            self._contact_ids.add(contact_id)
            self.created.append((id_type, value))
        return Answer(200), contact_id

    def send_single(self, message_id: int, recipient_id: int, parameters: dict[str, str]) -> Answer:
        """Engage's message/sendSingle; counts successful sends per (message, recipient)."""
        with self._lock:
            required = self._messages.get(message_id)
            known_contact = recipient_id in self._contact_ids
        if required is None:
            return _no_such_object("Message", "messageId", str(message_id))
        if not known_contact:
            return _no_such_object("Contact", "recipientId", str(recipient_id))
        for name in required:
            if name not in parameters:
                return Answer(
                    400,
                    {
                        "errorActor": "CLIENT",
                        "errorCode": "MISSING_PARAMETER",
                        "message": f"Parameter {name} is missing.",
                        "parameterName": name,
                    },
                )
        with self._lock:
            self.sends[(message_id, recipient_id)] += 1
        return Answer(204)

    # -- bookkeeping ---------------------------------------------------------------------------

    def record(self, call: Call) -> None:
        """Remember a call (tests assert on the exact calls received)."""
        with self._lock:
            self.calls.append(call)

    def calls_to(self, operation: str) -> list[Call]:
        """The calls received for one operation, in order."""
        with self._lock:
            return [c for c in self.calls if c.operation == operation]

    def stats(self) -> dict[str, Any]:
        """Counts for benchmarks and chaos runs."""
        with self._lock:
            calls = list(self.calls)
            sends = dict(self.sends)
        by_operation = Counter(c.operation for c in calls)
        return {
            "calls": len(calls),
            "calls_by_operation": dict(by_operation),
            "answers": dict(sorted(Counter(str(c.status) for c in calls).items())),
            "sends": sum(sends.values()),
            "distinct_sends": len(sends),
            "duplicate_sends": sum(n - 1 for n in sends.values() if n > 1),
            "max_calls_per_second": max_in_window([c.at for c in calls], 1.0),
        }

    def sends_as_json(self) -> list[dict[str, int]]:
        """Successful sends as JSON rows."""
        with self._lock:
            return [
                {"messageId": m, "recipientId": r, "count": n} for (m, r), n in self.sends.items()
            ]

    def calls_as_json(self) -> list[dict[str, Any]]:
        """Every call as JSON rows."""
        with self._lock:
            return [asdict(c) for c in self.calls]


def max_in_window(times: list[float], window: float) -> int:
    """The most events that fall within any interval of ``window`` seconds."""
    ordered = sorted(times)
    best = start = 0
    for end, t in enumerate(ordered):
        while t - ordered[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def now() -> float:
    """Wall clock used for call timestamps."""
    return time.time()


def _no_such_object(object_type: str, prop: str, value: str) -> Answer:
    return Answer(
        400,
        {
            "errorActor": "CLIENT",
            "errorCode": "NO_SUCH_OBJECT",
            "message": f"{object_type} with {prop}={value} does not exist.",
            "objectType": object_type,
            "propertyName": prop,
            "propertyValue": value,
        },
    )


def _already_exists(value: str) -> Answer:
    return Answer(
        400,
        {
            "errorActor": "CLIENT",
            "errorCode": "OBJECT_ALREADY_EXISTS",
            "message": "Such contact already exists.",
            "objectType": "Contact",
            "propertyName": "identifier",
            "propertyValue": value,
        },
    )


def _invalid_parameter(name: str, value: str) -> Answer:
    return Answer(
        400,
        {
            "errorActor": "CLIENT",
            "errorCode": "INVALID_PARAMETER",
            "message": f"Invalid value for parameter {name}.",
            "parameterName": name,
            "value": value,
        },
    )


def server_error_body(status: int) -> dict[str, Any]:
    """Error body for an injected 5xx; 500 uses Engage's load-shedding text."""
    message = "Database Access Limit Exceeded" if status == 500 else "Service Unavailable"
    return {"errorActor": "SERVER", "errorCode": "UNEXPECTED_ERROR", "message": message}
