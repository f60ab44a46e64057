"""A host application's Celery app, as a web app would run it: it receives completion callbacks.

Started as ``celery -A tests.support.callback_app worker -Q engage.callbacks`` on the broker of
``CELERY_BROKER_URL``, consuming the callback queue (:data:`QUEUE`, where ``ENGAGE_ON_DONE_QUEUE``
sends callbacks by default). Its one task stores each status it receives, as JSON, in the Redis
list :data:`RECEIVED`.
"""

from __future__ import annotations

import json
import os
from typing import Any

import redis
from celery import Celery

#: The callback task's name, as a send names it in ``on_done``.
TASK = "hostapp.sms_finished"
#: The default deployment's callback queue, which this app's worker consumes.
QUEUE = "engage.callbacks"
#: Redis list (on the broker's database) of the statuses received, oldest first.
RECEIVED = "hostapp:callbacks-received"
# A test fixture's own app: reading the environment once, when the worker imports it, is its job.
BROKER_URL = os.environ["CELERY_BROKER_URL"]  # the test that starts it names the broker

app = Celery("hostapp", broker=BROKER_URL, set_as_current=False)
app.conf.update(
    task_default_queue="celery",
    task_serializer="json",
    accept_content=["json"],
    task_ignore_result=True,
    broker_connection_retry_on_startup=True,
)


def _sms_finished(status: dict[str, Any]) -> None:
    """Keep the status received (a web app would look the key up and update its order)."""
    redis.Redis.from_url(BROKER_URL).rpush(RECEIVED, json.dumps(status))


# Registered by call, not decorator: Celery's decorators are untyped (mypy strict).
sms_finished = app.task(name=TASK)(_sms_finished)
