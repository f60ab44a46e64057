"""The pipeline's wait for a writable Redis before it publishes a retry."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import pytest
import redis

from tasks.worker import pipeline


class RefusingRedis:
    """Refuses ``refusals`` writes (NOREPLICAS-like, as redis-py raises them), then takes them."""

    def __init__(self, refusals: int) -> None:
        self.refusals = refusals
        self.writes = 0

    def set(self, *_: Any, **__: Any) -> bool:
        self.writes += 1
        if self.writes <= self.refusals:
            raise redis.ReadOnlyError("READONLY You can't write against a read only replica.")
        return True


def test_a_writable_redis_is_probed_at_least_once_a_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The pauses grow from 0.25 s to 1 s and stay there: an unsent lease is given back within a
    second of Redis taking writes again, before the sweep finds it lapsed."""
    waits: list[float] = []
    monkeypatch.setattr(
        pipeline, "time", SimpleNamespace(monotonic=time.monotonic, sleep=waits.append)
    )
    client = RefusingRedis(refusals=6)
    rt: Any = SimpleNamespace(redis=client, keys=SimpleNamespace(write_probe="p:probe:writable"))
    pipeline._await_writable(rt, time.monotonic() + 60)
    assert client.writes == 7
    assert waits == [0.25, 0.5, 1.0, 1.0, 1.0, 1.0]
