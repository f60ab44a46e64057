"""The Celery tasks: ``engage.resolve_contact`` then ``engage.send_single``, run as a chain.

A step (:mod:`tasks.delivery.steps`) decides how it ended and returns it as an outcome
(:mod:`tasks.delivery.outcomes`); :func:`_conclude` is the one place that turns it into Celery's
terms: a result, ``task.retry``, or :class:`~tasks.core.errors.DeadLettered`. The one exception a
step raises, Redis unreachable, becomes a retry published once Redis takes writes again (the worker
thread waits for it) instead of a failed publish that would drop the message. Once a send is
final, its completion callback, if it named one, is published here
(:mod:`tasks.worker.completion_callbacks`); a task's lane is the queue it was delivered from.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar, assert_never

from celery import Task
from celery.exceptions import Ignore, Reject

from tasks.core.errors import DeadLettered
from tasks.core.outages import OUTAGES
from tasks.core.request import SendRequest
from tasks.core.send_options import lane_of_queue, lane_queues
from tasks.delivery import steps as delivery
from tasks.delivery.context import SendMeta, StepContext
from tasks.delivery.outcomes import (
    Busy,
    DeadLetter,
    Resolved,
    Retry,
    Sent,
    StepOutcome,
    Stopped,
    Unrecorded,
)
from tasks.delivery.runtime import Runtime, current_runtime
from tasks.state import REDIS_UNREACHABLE
from tasks.worker import completion_callbacks
from tasks.worker.app import MaskedTask, app, engage_settings

logger = logging.getLogger("engage.worker")
_T = TypeVar("_T")

#: Retry after an unreachable Redis: soon, once it answers (the thread waits up to 5 minutes).
INFRASTRUCTURE_RETRY_DELAY = 1.0
INFRASTRUCTURE_PATIENCE = 300.0
#: And the publish itself is retried a little longer than Celery's default (~0.6 s).
INFRASTRUCTURE_PUBLISH_POLICY = {
    "max_retries": 10,
    "interval_start": 0.5,
    "interval_step": 0.5,
    "interval_max": 2.0,
}

#: How long the probe key written to tell that Redis takes writes again lives (ms).
WRITE_PROBE_MS = 10_000
#: A retry's publish failed for want of a writable broker: publish it again, never drop it.
PUBLISH_REFUSED = OUTAGES["broker"]

_TASK_OPTIONS: dict[str, Any] = {
    "bind": True,
    "base": MaskedTask,
    # Retries are decided by tasks.delivery.retry_policy and counted here without a Celery cap.
    "max_retries": None,
    # Acknowledge only when done, and take the message back if the worker dies mid-task.
    "acks_late": True,
    "reject_on_worker_lost": True,
    # A dead-lettered send is an expected end: Flower shows FAILURE with it, the log no traceback.
    "throws": (DeadLettered,),
}


@app.task(name="engage.resolve_contact", **_TASK_OPTIONS)
def resolve_contact(
    self: Task,
    request: dict[str, Any],
    key: str,
    task_ids: list[str],
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Look the contact up in Engage; returns ``{"contact_id": N}`` or ``{"skip": state}``."""
    ctx = _context(self, key, task_ids, meta)
    send_request = SendRequest.from_dict(request)
    outcome = _step(
        self,
        ctx,
        "contact/get",
        lambda rt: delivery.resolve(rt, send_request, ctx),
    )
    return _conclude(self, ctx, outcome)


@app.task(name="engage.send_single", **_TASK_OPTIONS)
def send_single(  # noqa: PLR0917  (Celery passes the chain's arguments positionally)
    self: Task,
    resolved: dict[str, Any],
    request: dict[str, Any],
    key: str,
    task_ids: list[str],
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Send the prepared message once; returns ``{"outcome": ...}``."""
    if "skip" in resolved:
        return {"outcome": resolved["skip"], "key": key}  # resolve_contact published callbacks
    ctx = _context(self, key, task_ids, meta)
    send_request = SendRequest.from_dict(request)
    contact_id = int(resolved["contact_id"])
    outcome = _step(
        self,
        ctx,
        "message/sendSingle",
        lambda rt: delivery.send(rt, send_request, contact_id, ctx),
    )
    return _conclude(self, ctx, outcome, contact_id=resolved["contact_id"])


def _conclude(
    task: Task, ctx: StepContext, outcome: StepOutcome, *, contact_id: Any = None
) -> dict[str, Any]:
    """The one place a step's outcome becomes Celery's: the task's result, a retry, a failure.

    ``contact_id`` is the send step's; without it, the outcome is the lookup's, whose result
    when it ends the send is ``{"skip": state}`` (the send step then only passes it on).
    """
    match outcome:
        case Resolved(contact_id=found):
            return {"contact_id": found}
        case Retry(delay=delay, error=error):
            raise task.retry(countdown=delay, exc=error) from None
        case DeadLetter(reason=reason, detail=detail, error=error):
            _finished(ctx.key)
            # FAILURE in Flower, no traceback in the log (the tasks' ``throws``); only the
            # masked error in its chain.
            raise DeadLettered(ctx.key, reason, detail) from error
        case Stopped(state=state):
            # Also a callback an earlier delivery filed and died before publishing.
            _finished(ctx.key)
            result = str(state)
        case Sent(callback=callback):
            if callback is not None:  # this delivery recorded it sent, and filed a callback
                _finished(ctx.key)
            result = "sent"
        case Busy():
            result = "in_progress"
        case Unrecorded():
            result = "unrecorded"  # the sweep ends it outcome_unknown and files the callback
        case _:
            assert_never(outcome)
    if contact_id is None:
        return {"skip": result}
    return {"outcome": result, "key": ctx.key, "contact_id": contact_id}


def _finished(key: str) -> None:
    """The send is final: publish its completion callback if one is due (never raises)."""
    try:
        completion_callbacks.publish_due(current_runtime(engage_settings()), key)
    except REDIS_UNREACHABLE as err:
        # The final state is recorded and the callback filed: the sweep publishes it.
        logger.warning("callback of %s left to the sweep: Redis unreachable (%s)", key, err)
    except Exception:  # a bug: the send itself is done and must not be reported failed
        logger.exception("callback of %s not published; left to the sweep", key)


def _step(
    task: Task,
    ctx: StepContext,
    stage: str,
    run: Callable[[Runtime], _T],
) -> _T:
    """Run one step; its outcome, or a retry once Redis answers when it was unreachable."""
    rt = current_runtime(engage_settings())
    try:
        return run(rt)
    except delivery.STEP_RAISES as caught:
        unsent = caught if isinstance(caught, delivery.UnsentLease) else None
        cause = caught.__cause__ if unsent is not None else caught
        err = cause if isinstance(cause, Exception) else caught
        logger.warning(
            "Redis unreachable during %s of %s (%s): retrying once it answers",
            stage,
            ctx.key,
            type(err).__name__,
        )
        # Redis may have failed while an Engage error was being handled, whose text is not
        # masked: keep it out of the chain Celery logs and Flower shows.
        err.__suppress_context__ = True
        raise _retry_once_writable(task, rt, err, unsent) from None


def _retry_once_writable(
    task: Task, rt: Runtime, err: Exception, unsent: delivery.UnsentLease | None = None
) -> Exception:
    """The retry of a step Redis failed, published only once Redis takes writes again.

    Celery drops the message when a retry cannot be published (``Reject(requeue=False)``), and
    the ledger would keep the send ``queued`` or ``retrying`` until the visibility timeout. A
    PING is not enough: a new primary refuses writes with NOREPLICAS for a while after a
    failover (``min-replicas-to-write``). So this waits for a write to the ledger to succeed and
    publishes then; a publish the broker still refuses is tried again, within the same
    patience, instead of dropping the message. Nothing else can progress meanwhile, so holding
    this thread costs nothing. Spare copies are harmless: the ledger decides who sends.

    ``unsent``: Redis failed after the send step took its lease and before ``sendSingle``.
    That lease is given back first, or the retry would find it busy and the sweep would
    dead-letter the send ``outcome_unknown`` though no request left.
    """
    deadline = time.monotonic() + INFRASTRUCTURE_PATIENCE
    while True:
        _await_writable(rt, deadline)
        if unsent is not None and not _give_back(rt, unsent, err, deadline):
            continue
        unsent = None
        try:
            retry: Exception = task.retry(
                countdown=INFRASTRUCTURE_RETRY_DELAY,
                exc=err,
                retry_policy=INFRASTRUCTURE_PUBLISH_POLICY,
                throw=False,
            )
        except Reject as rejected:
            if not isinstance(rejected.reason, PUBLISH_REFUSED) or time.monotonic() >= deadline:
                raise
            logger.warning(
                "retry not published (%s): publishing again once Redis takes writes",
                type(rejected.reason).__name__,
            )
            time.sleep(INFRASTRUCTURE_RETRY_DELAY)
        else:
            return retry


def _give_back(rt: Runtime, unsent: delivery.UnsentLease, err: Exception, deadline: float) -> bool:
    """Give back a lease no request went out under; False: Redis failed again, wait for it.

    Past ``deadline`` it stops trying (True): the lease lapses and the sweep settles the send.
    """
    why = f"Redis unreachable before message/sendSingle ({type(err).__name__}): not sent"
    try:
        released = rt.ledger.release_unsent(
            unsent.key, unsent.owner, unsent.token, why, INFRASTRUCTURE_RETRY_DELAY
        )
    except REDIS_UNREACHABLE:
        if time.monotonic() >= deadline:
            return True
        time.sleep(INFRASTRUCTURE_RETRY_DELAY)
        return False
    if released:
        logger.info("lease of %s given back: Redis failed before message/sendSingle", unsent.key)
    return True


def _await_writable(rt: Runtime, deadline: float) -> None:
    """Return once the ledger's Redis takes a write (a short-lived probe), or at ``deadline``.

    Probed at the pace of the steps' own writes through an outage (at least once a second), so
    an unsent lease is given back soon after Redis returns, before the sweep finds it lapsed.
    """
    delay = delivery.RECORD_RETRY_FIRST
    while time.monotonic() < deadline:
        try:
            rt.redis.set(rt.keys.write_probe, "1", px=WRITE_PROBE_MS)
        except REDIS_UNREACHABLE:
            time.sleep(delay)
            delay = min(delay * 2, delivery.RECORD_RETRY_MAX)
        else:
            return


def _context(task: Task, key: str, task_ids: list[str], meta: dict[str, Any] | None) -> StepContext:
    delivery_info = task.request.delivery_info or {}
    send_meta = SendMeta.from_dict(meta)
    if send_meta is not None and send_meta.deployment != engage_settings().key_prefix:
        _refuse_foreign(task, send_meta)
    return StepContext(
        key=key,
        task_id=task.request.id,
        retries=task.request.retries,
        task_ids=task_ids,
        # The lane is the queue the message came from (retries return to the same queue).
        priority=lane_of_queue(delivery_info.get("routing_key")),
        meta=send_meta,
    )


def _refuse_foreign(task: Task, meta: SendMeta) -> None:
    """A task of another deployment (another prefix, tenant and ledger): never run it here.

    It goes back, unchanged, to its own deployment's lane, and this delivery ends without a
    result, so no chain step follows it here. Only a worker consuming another deployment's
    queue sees one, which workers refuse at start (:mod:`tasks.worker.start_checks`).
    """
    queue = lane_queues(meta.deployment)[meta.lane]
    logger.error(
        "task %s of deployment %r refused by deployment %r: returned to %s",
        task.request.id,
        meta.deployment,
        engage_settings().key_prefix,
        queue,
    )
    task.apply_async(
        task.request.args,
        task.request.kwargs,
        task_id=task.request.id,
        queue=queue,
        chain=task.request.chain,
    )
    raise Ignore()
