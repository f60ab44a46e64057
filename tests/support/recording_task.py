"""A stand-in for the part of a Celery task that ``tasks.worker.pipeline._step`` uses."""

from __future__ import annotations


class RecordingTask:
    """``retry`` records its options and returns what the task would raise."""

    def __init__(self) -> None:
        self.retries: list[dict[str, object]] = []

    def retry(self, **options: object) -> Exception:
        """Record the retry's options."""
        self.retries.append(options)
        return RuntimeError("retry")
