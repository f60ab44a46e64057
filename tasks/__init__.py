"""Send Mapp Engage prepared SMS through Celery: never twice, never lost silently.

Web apps call :func:`send_prepared_sms`; ``celery -A tasks worker`` finds :data:`app` here. Both
are loaded on first use, so ``import tasks.engage`` or ``import tasks.state`` does not load
Celery: each layer imports only the layers below it (docs/design.md).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # type checkers see the names __getattr__ gives at run time
    from tasks.api import *  # noqa: F403  (its __all__: the public API)
    from tasks.worker.app import app as app

#: The public names (``__all__``), each with the module it is imported from on first use.
_WHERE = {
    "SendHandle": "tasks.api",
    "cancel_sends": "tasks.api",
    "delivery_status": "tasks.api",
    "replay_dead_letter": "tasks.api",
    "send_prepared_sms": "tasks.api",
    "suppress": "tasks.api",
    "unsuppress": "tasks.api",
    "app": "tasks.worker.app",
}

__all__ = list(_WHERE)


def __getattr__(name: str) -> Any:
    """The public names, imported on first use (PEP 562)."""
    if name not in _WHERE:
        raise AttributeError(f"module 'tasks' has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value
