"""Typed reads of environment variables, each failing with the variable's name; declarations."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast
from urllib.parse import urlsplit

from tasks.core.errors import ConfigurationError, InvalidSendRequest
from tasks.core.send_options import validate_task_name

T = TypeVar("T")


class Environment:
    """Typed reads of environment variables, each failing with the variable's name."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def _raw(self, name: str) -> str | None:
        value = self._environ.get(name)
        return None if value is None or not value.strip() else value.strip()

    def text(self, name: str) -> str:
        value = self._raw(name)
        if value is None:
            raise ConfigurationError(name, "is not set")
        return value

    def optional_text(self, name: str) -> str | None:
        return self._raw(name)

    def url(self, name: str, default: str | None, *, schemes: tuple[str, ...]) -> str:
        value = self._raw(name) or default
        if value is None:
            raise ConfigurationError(name, "is not set")
        parts = urlsplit(value)
        if parts.scheme not in schemes:
            raise ConfigurationError(
                name, f"must be a URL starting with {' or '.join(s + '://' for s in schemes)}"
            )
        if parts.scheme in ("http", "https") and not parts.hostname:
            raise ConfigurationError(name, "has no host")
        return value

    def number(self, name: str, default: float, *, minimum: float) -> float:
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigurationError(name, f"must be a number, got {raw!r}") from None
        if value < minimum or value != value:  # noqa: PLR0124  (NaN check)
            raise ConfigurationError(name, f"must be at least {minimum:g}, got {raw!r}")
        return value

    def integer(self, name: str, default: int, minimum: int) -> int:
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigurationError(name, f"must be a whole number, got {raw!r}") from None
        if value < minimum:
            raise ConfigurationError(name, f"must be at least {minimum}, got {raw!r}")
        return value

    def optional_port(self, name: str) -> int | None:
        if self._raw(name) is None:
            return None
        port = self.integer(name, 0, 1)
        if port > 65535:
            raise ConfigurationError(name, f"must be a TCP port (1 to 65535), got {port}")
        return port

    def task_name(self, name: str) -> str | None:
        value = self._raw(name)
        if value is None:
            return None
        try:
            return validate_task_name(value, field=name)
        except InvalidSendRequest as err:
            raise ConfigurationError(name, err.problem) from None

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = (self._raw(name) or default).lower()
        if value not in choices:
            raise ConfigurationError(name, f"must be one of {', '.join(choices)}, got {value!r}")
        return value


@dataclass(frozen=True)
class Setting(Generic[T]):
    """One environment variable declared once: name, type, default, lower bound, meaning.

    The one loader reads each into its ``field``; one whose text is no plain value (URLs, ports,
    quiet hours, caps, lanes, defaults derived from another variable) names a ``reader`` of its
    own. Only a variable read as another's fallback (``CELERY_BROKER_URL``) has no ``field``.
    """

    name: str
    type: type[T]
    default: T | None
    #: Attribute of :class:`tasks.core.settings.Settings` it fills (``retry.base_delay``); ""
    #: only for a variable read as another's fallback.
    field: str = ""
    #: Lowest accepted value (numbers only).
    minimum: float = 0
    #: Accepted values (text read with :meth:`Environment.choice`).
    choices: tuple[str, ...] = ()
    #: Shown after the default in the README: " s", "/s", " ms".
    unit: str = ""
    #: The README's default cell when it is no plain value (required, derived from another).
    shown: str = ""
    #: The attribute holds the value times this (``ENGAGE_DLQ_MAX_AGE_DAYS``: days to seconds).
    scale: float = 1
    #: One line for the README's table: what it means.
    doc: str = ""
    #: Reads a value that is no plain number, flag or choice: ``reader(env, self)`` returns the
    #: value (the default when unset) or raises ConfigurationError naming the variable.
    reader: Callable[[Environment, Setting[Any]], Any] | None = None

    @property
    def value(self) -> T | None:
        """The attribute's default: the declared default, scaled."""
        if isinstance(self.default, float) and self.scale != 1:
            return cast("T", self.default * self.scale)
        return self.default

    def read(self, env: Environment) -> T | None:
        """This variable's value from ``env`` (the default when unset), checked."""
        value: object
        if self.reader is not None:
            value = self.reader(env, self)
        elif self.type is bool:
            value = env.choice(self.name, "on" if self.default else "off", ("off", "on")) == "on"
        elif self.type is int and isinstance(self.default, int):
            value = env.integer(self.name, self.default, int(self.minimum))
        elif self.type is float and isinstance(self.default, float):
            value = env.number(self.name, self.default, minimum=self.minimum) * self.scale
        elif self.choices and isinstance(self.default, str):
            value = env.choice(self.name, self.default, self.choices)
        elif self.type is str:
            value = env.optional_text(self.name) or self.default
        else:
            raise TypeError(f"{self.name}: no generic read for {self.type.__name__}")
        return cast("T | None", value)  # each branch above reads self.type

    def row(self) -> str:
        """This variable's row of the README's settings table."""
        return f"| `{self.name}` | {self.shown_default()} | {self.doc} |"

    def shown_default(self) -> str:
        """The default as the README shows it."""
        if self.shown:
            return self.shown
        if self.type is bool:
            return "`on`" if self.default else "`off`"
        if self.default is None:
            return "unset"
        if isinstance(self.default, float):
            return f"`{self.default:g}`{self.unit}"
        return f"`{self.default}`{self.unit}"
