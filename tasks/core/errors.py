"""Every error this package raises, and whether a later attempt may succeed.

The tree::

    Rebuildable                       rebuilt from its fields by pickle, copy and masked()
    └── EngageSmsError
    ├── ConfigurationError            a setting is missing or malformed (never a delivery error)
    ├── InvalidSendRequest            bad input at enqueue time; nothing was enqueued
    ├── IdempotencyConflict           the key was used before for a different request
    ├── DeadLettered                  a send ended in the dead-letter store (raised by tasks)
    ├── ServiceUnavailable            Redis or the broker did not answer; ``service`` says which
    └── EngageError                   something went wrong talking to Engage
        ├── RequestNotSent            the request never left (connect failed): safe to retry
        ├── OutcomeUnknown            the request left, no answer came: it may have been sent
        ├── UnexpectedAnswer          an answer the docs do not describe: a redirect, an HTML
        │                             page, a malformed contactId (a proxy, not Engage's API?)
        └── EngageAPIError            Engage answered with an error status
            ├── CredentialsRejected   401/403: wrong user or password, wrong for every message
            ├── UnknownRecipient      400 NO_SUCH_OBJECT for the contact
            ├── RateLimited           429, or any answer carrying Retry-After
            ├── EngageServerError     5xx (including 500 "Database Access Limit Exceeded")
            └── EngageClientError     any other 4xx; ``error_code`` says which

Retry decisions live in :mod:`tasks.delivery.retry_policy`, keyed on these types.

Every exception class of the package, these and the few that never leave their layer, stands on
:class:`Rebuildable`: it declares the fields its constructor takes, and ``pickle``, ``copy`` and
:meth:`Rebuildable.masked` all rebuild it by calling the constructor with them.

An :class:`EngageError` quotes Engage's answer as it came, and an answer may echo the recipient
or a parameter value: :meth:`EngageError.masked` is the copy that may be logged, stored or handed
to Celery (the delivery layer masks each one once, by the request's private values).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Self, TypeVar

from tasks.core.urls import redact_url

#: Masks one text (:class:`tasks.core.masking.Masker` for a request's values, or a pattern masker).
Mask = Callable[[str], str]

_E = TypeVar("_E", bound="Rebuildable")


class Rebuildable(Exception):
    """An exception rebuilt from its fields: pickle, copy and :meth:`masked` call its constructor.

    ``args`` hold only the formatted text (what Celery and Flower show), so a class says which
    arguments its constructor takes (:attr:`_fields`); each is read back from the attribute of the
    same name, or the one :attr:`_attributes` names.
    """

    #: The constructor's arguments, passed back by name.
    _fields: ClassVar[tuple[str, ...]] = ()
    #: Fields kept under another attribute name: ``{argument: attribute}``.
    _attributes: ClassVar[Mapping[str, str]] = {}
    #: Fields that never hold a private value (a call's or a setting's name): masked() keeps them.
    _plain: ClassVar[frozenset[str]] = frozenset()

    def fields(self) -> dict[str, Any]:
        """The constructor's arguments that rebuild this error, by name."""
        return {name: getattr(self, self._attributes.get(name, name)) for name in self._fields}

    def masked(self, mask: Mask) -> Self:
        """A copy of the same type whose every text went through ``mask``; no cause attached.

        Texts inside dicts and lists, and errors held as fields, are masked too; only the fields
        in :attr:`_plain` are kept as they are. The copy carries no ``__cause__``, ``__context__``
        or traceback: the original's chain (an unreadable answer, a parser error) may quote the
        answer unmasked.
        """
        return _rebuild(
            type(self),
            {
                name: value if name in self._plain else _masked_all(value, mask)
                for name, value in self.fields().items()
            },
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.fields()))


def _rebuild(cls: type[_E], fields: Mapping[str, Any]) -> _E:
    """``cls`` built anew from its fields (what pickle and copy call)."""
    return cls(**fields)


def _masked_all(value: Any, mask: Mask) -> Any:
    """``value`` with every string inside it (dicts, lists and our errors walked) masked."""
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, Rebuildable):
        return value.masked(mask)
    if isinstance(value, Mapping):
        return {k: _masked_all(v, mask) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_masked_all(v, mask) for v in value]
    return value


class EngageSmsError(Rebuildable):
    """Base of every error raised by this package."""


class ConfigurationError(EngageSmsError):
    """A setting is missing or malformed; ``setting`` names it."""

    _fields = ("setting", "problem")
    _plain = frozenset({"setting"})

    def __init__(self, setting: str, problem: str) -> None:
        self.setting = setting
        self.problem = problem
        super().__init__(f"{setting}: {problem}")


class FieldError(Rebuildable):
    """One named field of some input is at fault: ``field`` names it, ``problem`` says how."""

    _fields = ("field", "problem")
    _plain = frozenset({"field"})

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


class InvalidSendRequest(EngageSmsError, FieldError, ValueError):
    """The send request is invalid; ``field`` names the argument at fault."""


class IdempotencyConflict(EngageSmsError):
    """The idempotency key was already used for a different request."""

    _fields = ("key",)

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(
            f"idempotency key {key!r} was already used for a different request; "
            "use a new key for a new send"
        )


class DeadLettered(EngageSmsError):
    """The send was moved to the dead-letter store; raised so Flower shows it as failed."""

    _fields = ("key", "reason", "detail")
    _plain = frozenset({"reason"})

    def __init__(self, key: str, reason: str, detail: str) -> None:
        self.key = key
        self.reason = reason
        self.detail = detail
        super().__init__(f"dead-lettered ({reason}): {detail} [key={key}]")


class ServiceUnavailable(EngageSmsError):
    """Redis or the broker did not answer; raised before anything was half-written.

    ``service`` is ``"redis"`` or ``"broker"``, ``url`` its URL with the password masked.
    """

    _fields = ("service", "url", "reason")
    _plain = frozenset({"service"})

    #: How each service is named in the message.
    LABELS: Mapping[str, str] = {"redis": "Redis", "broker": "broker"}

    def __init__(self, service: str, url: str, reason: str) -> None:
        self.service = service
        self.url = redact_url(url)
        self.reason = reason
        super().__init__(f"{self.LABELS.get(service, service)} unavailable at {self.url}: {reason}")


class EngageError(EngageSmsError):
    """A call to Engage failed; ``operation`` names the call (``contact/get``, ...)."""

    _fields: ClassVar[tuple[str, ...]] = ("operation", "message")
    _attributes: ClassVar[Mapping[str, str]] = {"message": "description"}
    _plain = frozenset({"operation"})

    def __init__(self, operation: str, message: str) -> None:
        self.operation = operation
        #: What went wrong, without the operation's name.
        self.description = message
        super().__init__(f"{operation}: {message}")


class RequestNotSent(EngageError):
    """The request never reached Engage (connection refused or connect timeout)."""


class OutcomeUnknown(EngageError):
    """The request was sent but no answer arrived: Engage may or may not have acted on it."""


class UnexpectedAnswer(EngageError):
    """An answer Engage's documentation does not describe; the text names what came back.

    ``may_have_acted`` is set for a 2xx answer to a send that is not a page from something in
    front of Engage: Engage itself may have sent the message and then answered oddly.
    """

    _fields = ("operation", "status", "content_type", "problem", "location", "may_have_acted")

    def __init__(
        self,
        operation: str,
        *,
        status: int,
        content_type: str,
        problem: str,
        location: str | None = None,
        may_have_acted: bool = False,
    ) -> None:
        self.status = status
        self.content_type = content_type
        self.problem = problem
        self.location = location
        self.may_have_acted = may_have_acted
        text = f"unexpected answer: HTTP {status} {content_type}"
        if location is not None:
            text += f", Location: {location}"
        super().__init__(operation, f"{text} ({problem})")


class EngageAPIError(EngageError):
    """Engage answered with an error status; carries its error body."""

    _fields = (
        "operation",
        "status",
        "error_actor",
        "error_code",
        "message",
        "details",
        "retry_after",
    )
    _attributes: ClassVar[Mapping[str, str]] = {"message": "engage_message"}

    def __init__(
        self,
        operation: str,
        *,
        status: int,
        error_actor: str | None = None,
        error_code: str | None = None,
        message: str | None = None,
        details: Mapping[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.error_actor = error_actor
        self.error_code = error_code
        self.engage_message = message
        self.details: dict[str, Any] = dict(details or {})
        self.retry_after = retry_after
        super().__init__(operation, self._describe())

    def _describe(self) -> str:
        parts = [f"HTTP {self.status}"]
        if self.error_code:
            parts.append(self.error_code)
        if self.error_actor:
            parts.append(f"actor={self.error_actor}")
        text = " ".join(parts)
        if self.engage_message:
            text += f": {self.engage_message}"
        return text

    def to_dict(self) -> dict[str, Any]:
        """The error as stored in a dead-letter entry."""
        return {
            "status": self.status,
            "errorActor": self.error_actor,
            "errorCode": self.error_code,
            "message": self.engage_message,
            **self.details,
        }


class CredentialsRejected(EngageAPIError):
    """Engage refused the API user's credentials (401/403)."""


class UnknownRecipient(EngageAPIError):
    """Engage knows no contact with this identifier (400 NO_SUCH_OBJECT)."""


class RateLimited(EngageAPIError):
    """Engage asked us to slow down (429 or Retry-After)."""


class EngageServerError(EngageAPIError):
    """Engage failed on its side (5xx)."""


class EngageClientError(EngageAPIError):
    """Engage rejected the request (4xx other than the cases above)."""
