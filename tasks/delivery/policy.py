"""The sending policy in the delivery steps (README: Sending policy).

At enqueue: what the claim records (:func:`claim_policy`: deadline, opt-out digest, quiet-hours
deferral, contact creation). In the send step, before the lease: quiet hours
(:func:`quiet_until`); with the lease: the opt-out list and the cap (:func:`check_gate`); a
policy end is final and named in one log line (:func:`end`). In the lookup step: creating a
contact Engage does not know (:func:`create_contact`), one worker at a time per identifier.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import UTC, datetime

from redis.exceptions import LockError

from tasks.core.errors import EngageError, Rebuildable
from tasks.core.quiet_hours import quiet_until as window_end
from tasks.core.quiet_hours import recipient_zones
from tasks.core.request import SendRequest
from tasks.core.send_options import Priority
from tasks.core.sending_policy import Deadline
from tasks.delivery.context import StepContext
from tasks.delivery.events import log_event
from tasks.delivery.outcomes import Resolved, Retry
from tasks.delivery.runtime import Runtime
from tasks.engage.contact_create import already_exists
from tasks.state.enums import SendState
from tasks.state.ledger import ClaimPolicy
from tasks.state.records import POLICY_DETAILS

#: How long one worker holds the right to create an identifier's contact (s): longer than the
#: two calls can take (HTTP timeouts and rate-limit waits), and gone by itself if it dies.
CREATE_LOCK_SECONDS = 120
#: A send that finds another worker creating its contact looks it up again after this long.
CREATE_WAIT = 1.0

DETAILS = {SendState(state): detail for state, detail in POLICY_DETAILS.items()}


def claim_policy(
    rt: Runtime,
    request: SendRequest,
    lane: Priority,
    deadline: Deadline,
    *,
    create_contact: bool | None,
    now: float | None = None,
) -> ClaimPolicy:
    """What the claim records for a new send (reads Redis once per process for the digest key)."""
    policy = rt.settings.policy
    applies = policy.suppression_applies(lane)
    return ClaimPolicy(
        expires_in=deadline.expires_in,
        send_by=deadline.send_by,
        suppression=rt.suppressions.lookup_digest(request.identifier) if applies else None,
        not_before=quiet_until(rt, request, lane, now),
        create_contact=policy.create_contacts if create_contact is None else create_contact,
    )


def quiet_until(
    rt: Runtime, request: SendRequest, lane: Priority, now: float | None = None
) -> float | None:
    """When quiet hours let this send go (epoch s), or None when it may go now.

    ``now`` is the Redis clock's (read here when not given, only where quiet hours apply), as
    the sweep that releases deferred sends reads it.
    """
    policy = rt.settings.policy
    if policy.quiet_hours is None or not policy.quiet_applies(lane):
        return None
    ident = request.identifier
    zones = recipient_zones(ident.type, ident.value, policy.default_timezone)
    if now is None:
        now = rt.ledger.now()
    until = window_end(policy.quiet_hours, zones, datetime.fromtimestamp(now, UTC))
    return None if until is None else until.timestamp()


def defer(rt: Runtime, request: SendRequest, ctx: StepContext, not_before: float) -> SendState:
    """Hold a send that met quiet hours in Redis; the sweep publishes it when they end."""
    if rt.deferrals.defer(ctx.key, not_before):
        log_event(
            "deferred",
            key=ctx.key,
            task_id=ctx.task_id,
            recipient=request.identifier.masked(),
            not_before=datetime.fromtimestamp(not_before, UTC).isoformat(timespec="seconds"),
            priority=ctx.priority,
        )
    return SendState.DEFERRED


def check_gate(rt: Runtime, request: SendRequest, ctx: StepContext) -> SendState | None:
    """Under the lease: the opt-out list again and the cap; the end it calls for, or None."""
    policy = rt.settings.policy
    ident = request.identifier
    digest = rt.suppressions.digest(ident) if policy.suppression_applies(ctx.priority) else None
    verdict = rt.gate.check(
        ctx.key, ctx.owner, suppression=digest, cap=rt.caps.check_for(ident, ctx.priority)
    )
    if verdict == "ok":
        return None
    if verdict == "lost":
        raise LeaseLost
    return SendState(verdict)


class LeaseLost(Rebuildable):
    """Another delivery took the lease between ours and the gate (ours had lapsed)."""


def end(
    rt: Runtime, request: SendRequest, ctx: StepContext, state: SendState, *, owner: str = ""
) -> SendState:
    """End the send ``state`` (expired, capped, suppressed): final, callback filed, logged.

    Returns the state the send is in afterwards (another delivery may have finished it first).
    """
    if not rt.gate.finish(ctx.key, state, DETAILS[state], owner=owner):
        return rt.ledger.state(ctx.key) or state
    log_event(
        str(state),
        key=ctx.key,
        task_id=ctx.task_id,
        recipient=request.identifier.masked(),
        detail=DETAILS[state],
        priority=ctx.priority,
    )
    return state


def wants_contact_created(rt: Runtime, key: str) -> bool:
    """Whether this send asked to create an unknown contact (recorded at enqueue)."""
    return rt.ledger.record(key).get("create_contact") == "1"


def create_contact(
    rt: Runtime, request: SendRequest, ctx: StepContext, pace: Callable[[], Retry | None]
) -> Resolved | Retry:
    """Create the contact Engage does not know: its id; one creator per identifier.

    ``pace`` waits for a rate-limit slot before each call, or says when to come back. Another
    worker creating the same identifier holds ``{p}:contact_create:...``: this send looks it up
    again shortly (:class:`Retry`) instead of creating a second one. "Already exists" from Engage
    (created by someone else since the lookup) means: look it up again. Errors of either call
    go to the caller (retried or dead-lettered like any lookup).
    """
    ident = request.identifier
    digest = rt.hasher.digest("contact_create", ident.value, 32)
    # redis-py's lock releases only its own token: a lock that outlived its timeout and was
    # taken by another worker is not deleted from under it.
    lock = rt.redis.lock(rt.keys.contact_create(ident.type, digest), timeout=CREATE_LOCK_SECONDS)
    if not lock.acquire(blocking=False):
        return Retry(CREATE_WAIT)
    try:
        try:
            if (waiting := pace()) is not None:
                return waiting
            created = rt.engage.create_contact(ident)
        except EngageError as err:
            if not already_exists(err):
                raise
            if (waiting := pace()) is not None:
                return waiting
            contact_id = rt.engage.get_contact(ident).contact_id
            log_event(
                "contact_found",
                key=ctx.key,
                task_id=ctx.task_id,
                recipient=ident.masked(),
                contact_id=contact_id,
            )
            return Resolved(contact_id)
        log_event(
            "contact_created",
            key=ctx.key,
            task_id=ctx.task_id,
            recipient=ident.masked(),
            contact_id=created.contact_id,
        )
        return Resolved(created.contact_id)
    finally:
        with contextlib.suppress(LockError):
            lock.release()
