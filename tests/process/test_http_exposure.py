"""``engage-sms api`` listens on loopback unless told otherwise, and needs no Engage settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.environments import NOWHERE_REDIS_URL, bare_env
from tests.support.http_server import api_process, free_port, start_api
from tests.support.processes import listening_addresses

pytestmark = pytest.mark.process


def test_the_api_listens_on_loopback_by_default(tmp_path: Path) -> None:
    """Without --host: 127.0.0.1 only; started with the broker and Redis settings alone."""
    port = free_port()
    api = api_process(bare_env(CELERY_BROKER_URL=NOWHERE_REDIS_URL), tmp_path / "api.log", port)
    try:
        start_api(api)
        assert listening_addresses(port) == {"127.0.0.1"}
    finally:
        api.stop()
