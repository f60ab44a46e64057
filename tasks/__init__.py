"""Send Mapp Engage prepared SMS through Celery: never twice, never lost silently.

``celery -A tasks worker`` finds :data:`app` here; web apps call :func:`send_prepared_sms`.
"""

# Imported for their side effects: the beat tasks are registered, the worker hooks connected.
from tasks import housekeeping, schedules, worker_signals  # noqa: F401
from tasks.api import SendHandle, delivery_status, replay_dead_letter, send_prepared_sms
from tasks.celery_app import app

__all__ = ["SendHandle", "app", "delivery_status", "replay_dead_letter", "send_prepared_sms"]
