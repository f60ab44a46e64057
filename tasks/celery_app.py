"""The Celery application. Its configuration comes from ``celeryconfig.py``, loaded lazily."""

from __future__ import annotations

from typing import Any

from celery import Celery, Task

from tasks.masking import mask_value
from tasks.send_request import SendRequest
from tasks.settings import Settings

app = Celery("engage")
# Lazy: the module is imported when the configuration is first read, not at import of this one.
app.config_from_object("celeryconfig")


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
    """The settings object ``celeryconfig.py`` loaded from the environment."""
    settings = app.conf.get("engage_settings")
    if not isinstance(settings, Settings):
        from tasks.errors import ConfigurationError  # noqa: PLC0415

        raise ConfigurationError(
            "engage_settings", "celeryconfig.py must define it (see README: Configuration)"
        )
    return settings
