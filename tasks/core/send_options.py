"""What a send may ask for besides its request: a priority lane and a completion callback.

Lanes, highest first: ``urgent`` (a password reset, a one-time code), ``normal`` (the default)
and ``bulk`` (campaigns, schedules, imports). Each lane is a Celery queue of its own
(:data:`LANE_QUEUES`), and the global rate limit serves a waiting call of a higher lane first
(:mod:`tasks.state.rate_limit`). Neither the lane nor the callback is part of the request's
fingerprint: repeating an enqueue under the same key with another lane or callback is a duplicate
of the first, which keeps its own.
"""

from __future__ import annotations

import re
from enum import StrEnum

from tasks.core.errors import InvalidSendRequest


class Priority(StrEnum):
    """A send's lane, highest first (the order of the members is the order of service)."""

    URGENT = "urgent"
    NORMAL = "normal"
    BULK = "bulk"

    @property
    def rank(self) -> int:
        """0 for urgent, 1 for normal, 2 for bulk."""
        return list(Priority).index(self)


#: The lane of a send that names none.
DEFAULT_PRIORITY = Priority.NORMAL
#: The lane of a scheduled send whose schedule names none: a schedule is a batch by nature.
DEFAULT_SCHEDULE_PRIORITY = Priority.BULK
#: The deployment of ``ENGAGE_KEY_PREFIX`` unset: its queues keep the names of older versions.
DEFAULT_DEPLOYMENT = "engage"


def lane_queues(deployment: str = DEFAULT_DEPLOYMENT) -> dict[Priority, str]:
    """The Celery queue of each lane of one deployment (``{prefix}.{lane}``), highest first.

    Named by the deployment (``ENGAGE_KEY_PREFIX``), so two deployments on one Redis never
    consume each other's sends; the default prefix gives ``engage.urgent`` and so on.
    """
    return {p: f"{deployment}.{p.value}" for p in Priority}


def all_queues(deployment: str = DEFAULT_DEPLOYMENT) -> str:
    """Every lane's queue of a deployment, highest first: the ``-Q`` of a worker serving all."""
    return ",".join(lane_queues(deployment).values())


#: The default deployment's queues: what workers consume (``-Q``) and Flower lists.
LANE_QUEUES: dict[Priority, str] = lane_queues()
#: Every lane's queue of the default deployment, highest first.
ALL_QUEUES = all_queues()

#: A Celery task name: dotted words (``myapp.tasks.sms_finished``), as ``send_task`` takes it.
_TASK_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:[.:\-][A-Za-z_][A-Za-z0-9_]*)*")
MAX_TASK_NAME_LENGTH = 200


def parse_priority(value: object, *, field: str = "priority") -> Priority:
    """``value`` as a lane; InvalidSendRequest naming ``field`` unless it is one of the three."""
    if isinstance(value, Priority):
        return value
    if isinstance(value, str) and value.strip().lower() in {p.value for p in Priority}:
        return Priority(value.strip().lower())
    raise InvalidSendRequest(
        field, f"must be one of {', '.join(p.value for p in Priority)}, got {value!r}"
    )


def lane_of_queue(queue: object) -> Priority:
    """The lane a task was delivered from, by its queue name (any deployment's); else normal."""
    if isinstance(queue, str):
        lane = queue.rpartition(".")[2]
        if lane in _LANE_NAMES:
            return Priority(lane)
    return DEFAULT_PRIORITY


_LANE_NAMES = frozenset(p.value for p in Priority)


def validate_task_name(value: object, *, field: str = "on_done") -> str:
    """A completion callback's Celery task name; InvalidSendRequest naming ``field`` if not one."""
    if (
        not isinstance(value, str)
        or len(value) > MAX_TASK_NAME_LENGTH
        or not _TASK_NAME.fullmatch(value)
    ):
        raise InvalidSendRequest(
            field,
            f"must be a Celery task name such as 'myapp.tasks.sms_finished' "
            f"(at most {MAX_TASK_NAME_LENGTH} characters), got {value!r}",
        )
    return value
