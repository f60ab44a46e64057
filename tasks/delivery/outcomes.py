"""How a step ended: one value per way, which :mod:`tasks.worker.pipeline` maps to Celery.

A step returns exactly one of these; it raises only for what is exceptional (Redis unreachable,
a bug). Errors an outcome carries are already masked: the pipeline shows them as they are.

==================  ==================================================  =====================
outcome             what happened                                       the task
==================  ==================================================  =====================
:class:`Resolved`   the lookup found the contact id                     hands it to the send
:class:`Sent`       Engage accepted the send and this delivery          ``sent``, callback
                    recorded it
:class:`Unrecorded` Engage accepted the send; the ledger could not      ``unrecorded`` (the
                    record it                                           sweep ends it)
:class:`Busy`       another delivery holds the send's lease             ``in_progress``
:class:`Stopped`    nothing (more) to send: the send is in ``state``    that state, callback
:class:`Retry`      run the step again in ``delay`` seconds             ``task.retry``
:class:`DeadLetter` the send went to the dead-letter store              ``DeadLettered``
==================  ==================================================  =====================
"""

from __future__ import annotations

from dataclasses import dataclass

from tasks.core.errors import EngageError
from tasks.state.enums import Reason, SendState


@dataclass(frozen=True)
class Resolved:
    """The lookup found the contact to send to."""

    contact_id: int


@dataclass(frozen=True)
class Sent:
    """Engage accepted the send and this delivery recorded it ``sent``.

    ``callback`` is the completion callback that made due (None: the send named none).
    """

    callback: str | None


@dataclass(frozen=True)
class Unrecorded:
    """Engage accepted the send but the ledger could not record it: its lease lapses and the
    sweep dead-letters it ``outcome_unknown``; nothing sends it again."""


@dataclass(frozen=True)
class Busy:
    """Another delivery holds the send's lease (it is sending): nothing to do here."""


@dataclass(frozen=True)
class Stopped:
    """Nothing (more) to send: the send is in ``state``.

    Final by an earlier delivery, ended by the sending policy in this step (expired, capped,
    suppressed), or held for quiet hours (``deferred``: the sweep publishes it again).
    """

    state: SendState


@dataclass(frozen=True)
class Retry:
    """Run the step again in ``delay`` seconds, after ``error`` (masked) or, without one,
    waiting for a rate-limit slot, a contact being created or a failover."""

    delay: float
    error: EngageError | None = None


@dataclass(frozen=True)
class DeadLetter:
    """The send is in the dead-letter store for ``reason``; ``error`` is Engage's, masked."""

    reason: Reason
    detail: str
    error: EngageError | None = None


#: What the lookup step returns.
LookupOutcome = Resolved | Stopped | Retry | DeadLetter
#: What the send step returns.
SendOutcome = Sent | Unrecorded | Busy | Stopped | Retry | DeadLetter
#: Either step's outcome, as the pipeline maps it.
StepOutcome = LookupOutcome | SendOutcome
