"""Which delivery of which send a step runs, and what its task message carried."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tasks.core.send_options import DEFAULT_PRIORITY, Priority, parse_priority


@dataclass(frozen=True)
class SendMeta:
    """What a task message carries besides the request, so a lost ledger record loses nothing.

    ``deployment`` is the key prefix of the deployment that published it: a worker of another
    one refuses the task. ``queued_at`` (epoch seconds) says whether a missing record can only
    have been lost (younger than the record retention) or may have expired after its send.
    """

    deployment: str
    lane: Priority
    on_done: str | None
    queued_at: float

    def to_dict(self) -> dict[str, Any]:
        """JSON form, as carried in the task message (``meta``)."""
        return {
            "deployment": self.deployment,
            "lane": self.lane.value,
            "on_done": self.on_done,
            "queued_at": self.queued_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> SendMeta | None:
        """Inverse of :meth:`to_dict`; None for a message of a version that carried none."""
        if not data:
            return None
        return cls(
            deployment=str(data["deployment"]),
            lane=parse_priority(data.get("lane") or DEFAULT_PRIORITY),
            on_done=data.get("on_done") or None,
            queued_at=float(data["queued_at"]),
        )


@dataclass(frozen=True)
class StepContext:
    """Which send this is and which delivery of which task is running it."""

    key: str
    task_id: str
    retries: int
    task_ids: list[str]
    #: The lane the task was delivered from: how it waits for a rate-limit slot.
    priority: Priority = DEFAULT_PRIORITY
    #: What the message carried besides the request (None: a message of an older version).
    meta: SendMeta | None = None

    @property
    def owner(self) -> str:
        """Names this delivery attempt: the same value on a redelivery of the same attempt."""
        return f"{self.task_id}:{self.retries}"
