"""One structured log line per state change of a send, with nothing a reader may not see."""

from __future__ import annotations

import json
import logging
from typing import Any

from tasks.delivery import metrics
from tasks.masking import mask_value

logger = logging.getLogger("engage.delivery")


def log_event(event: str, *, key: str, task_id: str | None = None, **fields: Any) -> None:
    """Log ``event`` for ``key`` as one JSON line (every value masked) and count it."""
    metrics.count_event(event, fields)
    record = {"event": event, "key": key, "task_id": task_id}
    record.update({k: v for k, v in fields.items() if v is not None})
    level = logging.WARNING if event == "dead_lettered" else logging.INFO
    if fields.get("reason") == "auth_failed":
        level = logging.CRITICAL
    logger.log(level, "%s", json.dumps(mask_value(record), default=str, sort_keys=False))
