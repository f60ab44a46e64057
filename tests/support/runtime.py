"""Runtimes on fakeredis: the per-process objects the steps and the API use, minus real Redis."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import fakeredis

from tasks.core.settings import Settings
from tasks.delivery.runtime import Runtime, install_runtime
from tasks.engage import EngageClient
from tests.support.environments import NOWHERE_ENGAGE_URL, make_settings


def fake_runtime(
    settings: Settings | None = None,
    *,
    redis_client: fakeredis.FakeRedis | None = None,
    engage: EngageClient | None = None,
) -> Runtime:
    """A runtime on ``redis_client`` (a new fakeredis by default), fast settings by default."""
    return Runtime.build(
        settings or make_settings(NOWHERE_ENGAGE_URL),
        redis_client=redis_client if redis_client is not None else fakeredis.FakeRedis(),
        engage=engage,
    )


@contextmanager
def installed(runtime: Runtime) -> Iterator[Runtime]:
    """``runtime`` as this process's runtime (what the API and tasks use) until the block ends."""
    install_runtime(runtime)
    try:
        yield runtime
    finally:
        install_runtime(None)
