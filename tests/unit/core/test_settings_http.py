"""ENGAGE_HTTP_RATE_LIMIT: read once into Settings.http, refused when malformed."""

from __future__ import annotations

import pytest

from tasks.core.errors import ConfigurationError
from tasks.core.settings import DEFAULT_HTTP_RATE_LIMIT, load_settings


def test_the_rate_limit_defaults_and_can_be_lifted() -> None:
    """Unset: the default; 0: no limit."""
    assert load_settings({}).http.rate_limit == DEFAULT_HTTP_RATE_LIMIT
    assert load_settings({"ENGAGE_HTTP_RATE_LIMIT": "0"}).http.rate_limit == 0


@pytest.mark.parametrize("value", ["-1", "ten", "1.5"])
def test_a_malformed_rate_limit_names_the_variable(value: str) -> None:
    """A negative, non-number or fractional value stops the process with the variable's name."""
    with pytest.raises(ConfigurationError) as raised:
        load_settings({"ENGAGE_HTTP_RATE_LIMIT": value})
    assert raised.value.setting == "ENGAGE_HTTP_RATE_LIMIT"
