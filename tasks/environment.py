"""Typed reads of environment variables, each failing with the variable's name."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from tasks.errors import ConfigurationError, InvalidSendRequest
from tasks.send_options import validate_task_name


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
