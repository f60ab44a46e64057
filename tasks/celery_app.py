"""The Celery application. Its configuration comes from ``celeryconfig.py``, loaded lazily."""

from __future__ import annotations

from typing import Any

from celery import Celery, Task

from tasks.masking import mask_value
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
        options.setdefault("argsrepr", repr(mask_value(list(args or ()))))
        options.setdefault("kwargsrepr", repr(mask_value(dict(kwargs or {}))))
        return super().apply_async(args, kwargs, **options)


def engage_settings() -> Settings:
    """The settings object ``celeryconfig.py`` loaded from the environment."""
    settings = app.conf.get("engage_settings")
    if not isinstance(settings, Settings):
        from tasks.errors import ConfigurationError  # noqa: PLC0415

        raise ConfigurationError(
            "engage_settings", "celeryconfig.py must define it (see README: Configuration)"
        )
    return settings
