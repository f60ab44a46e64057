"""The fixed vocabularies of the stores: send states, script outcomes, dead-letter reasons.

``StrEnum``: each member is its string, so Redis fields, JSON, logs and metric labels read as
before, while mypy checks every comparison against a member.
"""

from __future__ import annotations

from enum import StrEnum


class SendState(StrEnum):
    """Where a send stands: the ``state`` field of its ledger record."""

    QUEUED = "queued"
    SENDING = "sending"
    RETRYING = "retrying"
    SENT = "sent"
    DEAD_LETTERED = "dead_lettered"
    #: Stopped by an operator before it started (``engage-sms cancel``): final, never sent.
    CANCELLED = "cancelled"
    #: Held in Redis until quiet hours end (``not_before`` in the status); released by the sweep.
    DEFERRED = "deferred"
    #: Final: the send's deadline passed before Engage was called.
    EXPIRED = "expired"
    #: Final: the recipient had its cap of sends in this lane (``ENGAGE_RECIPIENT_CAP``).
    CAPPED = "capped"
    #: Final: the recipient is on the opt-out list.
    SUPPRESSED = "suppressed"


#: States a send ends in: nothing moves it on (a dead letter only by a replay).
FINAL_STATES = frozenset(
    {
        SendState.SENT,
        SendState.DEAD_LETTERED,
        SendState.EXPIRED,
        SendState.CAPPED,
        SendState.SUPPRESSED,
        SendState.CANCELLED,
    }
)
#: Final states of the sending policy: not sent, and not dead letters (a replay would send late).
POLICY_ENDS = frozenset({SendState.EXPIRED, SendState.CAPPED, SendState.SUPPRESSED})


class ClaimOutcome(StrEnum):
    """What claiming a key at enqueue found."""

    CREATED = "created"  # a new record: publish the send
    EXISTS = "exists"  # the same request under this key: nothing new to publish
    CONFLICT = "conflict"  # another request holds the key


class StartOutcome(StrEnum):
    """What taking the send lease found: go ahead, or why not."""

    ACQUIRED = "acquired"  # this delivery holds the lease: call Engage
    SENT = "sent"  # an earlier delivery sent it
    DEAD_LETTERED = "dead_lettered"  # an earlier delivery dead-lettered it
    CANCELLED = "cancelled"  # an operator cancelled it
    BUSY = "busy"  # another delivery holds a live lease
    INTERRUPTED = "interrupted"  # a holder died mid-send: Engage may have sent it
    BLOCKED = "blocked"  # the credentials flag is up: nothing was taken
    MISSING = "missing"  # no record (purged, or Redis lost it)
    EXPIRED = "expired"  # the deadline passed (or the send ended expired before)
    DEFERRED = "deferred"  # held for quiet hours: the sweep publishes it again
    CAPPED = "capped"  # ended capped before
    SUPPRESSED = "suppressed"  # ended suppressed before


class Reason(StrEnum):
    """Why a send was dead-lettered."""

    #: Engage knows no such contact (after a few short retries).
    UNKNOWN_RECIPIENT = "unknown_recipient"
    #: Engage refused the request for good (400 with a permanent errorCode).
    REJECTED = "rejected"
    #: Engage refused our credentials: parked until an operator replays.
    AUTH_FAILED = "auth_failed"
    #: The request left but no answer came: it may have been sent.
    OUTCOME_UNKNOWN = "outcome_unknown"
    #: Transient failures outlasted the retry budget.
    RETRIES_EXHAUSTED = "retries_exhausted"
    #: The task killed its worker repeatedly (poison message).
    WORKER_LOST = "worker_lost"
    #: Not Engage's answer (a redirect, an HTML page): a deployment problem.
    UNEXPECTED_ANSWER = "unexpected_answer"
    #: A step raised something unforeseen: the entry names the exception type.
    INTERNAL_ERROR = "internal_error"
    #: A task found no ledger record and could not tell lost from expired: not sent blindly.
    RECORD_MISSING = "record_missing"
