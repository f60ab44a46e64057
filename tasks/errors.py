"""The exception tree, where users catch it: ``from tasks.errors import IdempotencyConflict``.

The classes live in :mod:`tasks.core.errors` (the tree is drawn in its docstring); this module
names them under the path the README documents, so code that catches them keeps working.
"""

from tasks.core.errors import (
    ConfigurationError,
    CredentialsRejected,
    DeadLettered,
    EngageAPIError,
    EngageClientError,
    EngageError,
    EngageServerError,
    EngageSmsError,
    FieldError,
    IdempotencyConflict,
    InvalidSendRequest,
    OutcomeUnknown,
    RateLimited,
    Rebuildable,
    RequestNotSent,
    ServiceUnavailable,
    UnexpectedAnswer,
    UnknownRecipient,
)

__all__ = [
    "ConfigurationError",
    "CredentialsRejected",
    "DeadLettered",
    "EngageAPIError",
    "EngageClientError",
    "EngageError",
    "EngageServerError",
    "EngageSmsError",
    "FieldError",
    "IdempotencyConflict",
    "InvalidSendRequest",
    "OutcomeUnknown",
    "RateLimited",
    "Rebuildable",
    "RequestNotSent",
    "ServiceUnavailable",
    "UnexpectedAnswer",
    "UnknownRecipient",
]
