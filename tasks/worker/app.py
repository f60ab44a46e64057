"""The Celery application, configured from :mod:`tasks.worker.config` (loaded lazily).

The configuration module lives inside the package, not as a top-level ``celeryconfig`` module:
a host application with its own ``celeryconfig.py`` and its own Celery app keeps both, and this
app never becomes the host's current app (``set_as_current=False``).
"""

from __future__ import annotations

from typing import Any

from celery import Celery, Task
from celery.app.amqp import AMQP

from tasks.core.errors import ConfigurationError
from tasks.core.masking import mask_value
from tasks.core.request import SendRequest
from tasks.core.settings import Settings
from tasks.worker.programs import on_configured
from tasks.worker.transport import Connection

#: Modules holding tasks and worker hooks: imported by ``celery -A tasks worker`` (and beat) at
#: start, not by ``import tasks``.
TASK_MODULES = (
    "tasks.worker.pipeline",
    "tasks.worker.housekeeping",
    "tasks.worker.schedules",
    "tasks.worker.signals",
    "tasks.worker.recovery",
    "tasks.worker.startup",
)


class EngageAMQP(AMQP):  # type: ignore[misc]  # Celery ships no type hints
    """Celery's AMQP of this app: its connections keep the Sentinel transport through failover."""

    Connection = Connection


app = Celery("engage", include=list(TASK_MODULES), set_as_current=False, amqp=EngageAMQP)
# Lazy: the module is imported when the configuration is first read, not at import of this one.
app.config_from_object("tasks.worker.config")
# What a celery program (worker, beat, Flower...) refuses is decided once that happens.
app.on_after_configure.connect(on_configured, weak=False)


class MaskedTask(Task):  # type: ignore[misc]  # Celery ships no type hints
    """A task whose arguments appear masked in Flower, events and logs (argsrepr/kwargsrepr).

    Every publish goes through ``apply_async``: the first call, the chain's next step and retries.
    """

    def apply_async(self, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        """Publish with masked representations of the arguments."""
        options.setdefault("argsrepr", repr([_shown(a) for a in args or ()]))
        options.setdefault("kwargsrepr", repr({k: _shown(v) for k, v in (kwargs or {}).items()}))
        return super().apply_async(args, kwargs, **options)


def _shown(value: Any) -> Any:
    """A send request as its masked summary (parameter values can be personal too); else masked."""
    if isinstance(value, dict) and {"message_id", "identifier", "parameters"} <= value.keys():
        return SendRequest.from_dict(value).masked()
    return mask_value(value)


def engage_settings() -> Settings:
    """The settings object :mod:`tasks.worker.config` loaded from the environment.

    Raises the ConfigurationError that stopped the loading, naming the variable.
    """
    error = app.conf.get("engage_settings_error")
    if isinstance(error, ConfigurationError):
        raise error
    settings = app.conf.get("engage_settings")
    if not isinstance(settings, Settings):
        raise ConfigurationError(
            "engage_settings", "tasks.worker.config must define it (see README: Configuration)"
        )
    return settings
