"""Which delivery of which send a step runs, and the signal to run it again later."""

from __future__ import annotations

from dataclasses import dataclass, field

from tasks.errors import EngageError
from tasks.send_options import DEFAULT_PRIORITY, Priority


class RetryLater(Exception):
    """Try this step again in ``delay`` seconds (after ``error``, or waiting for a rate slot)."""

    def __init__(self, delay: float, error: EngageError | None) -> None:
        self.delay = delay
        self.error = error
        super().__init__(f"retry in {delay:.1f} s after {error or 'waiting for a rate slot'}")


@dataclass(frozen=True)
class StepContext:
    """Which send this is and which delivery of which task is running it."""

    key: str
    task_id: str
    retries: int
    task_ids: list[str]
    #: The lane the task was delivered from: how it waits for a rate-limit slot.
    priority: Priority = DEFAULT_PRIORITY
    #: Filled by :func:`send` when this delivery recorded ``sent`` itself: the completion
    #: callback that made due, or None (the task publishes it; nothing else to look up).
    sent_now: list[str | None] = field(default_factory=list, compare=False, repr=False)

    @property
    def owner(self) -> str:
        """Names this delivery attempt: the same value on a redelivery of the same attempt."""
        return f"{self.task_id}:{self.retries}"
