"""What a worker's options may ask for: its own lanes, and the pools that work."""

from __future__ import annotations

import pytest
from celery.concurrency import solo

from tasks.core.settings import load_settings
from tasks.worker.start_checks import pool_name, worker_problem

SETTINGS = load_settings({"ENGAGE_KEY_PREFIX": "acme"})


@pytest.mark.parametrize(
    ("pool", "name"),
    [
        ("gevent", "gevent"),
        ("celery.concurrency.gevent:TaskPool", "gevent"),
        (solo.TaskPool, "solo"),
    ],
)
def test_pools_are_named_as_on_the_command_line(pool: object, name: str) -> None:
    """A pool class or path Celery parsed -P into is named as -P names it."""
    assert pool_name(pool) == name


def test_own_lanes_and_no_queues_are_accepted() -> None:
    """A worker of acme may consume any of acme's lanes, or all of them without -Q."""
    assert worker_problem(None, ["acme.urgent", "acme.bulk"], SETTINGS) is None
    assert worker_problem("threads", None, SETTINGS) is None


def test_foreign_queues_are_named() -> None:
    """Queues of no lane of acme's are named, with acme's lanes."""
    problem = worker_problem("solo", ["acme.urgent", "celery", "beta.bulk"], SETTINGS)
    assert problem is not None
    assert problem.startswith("-Q celery,beta.bulk: ")
    assert "acme.urgent,acme.normal,acme.bulk" in problem


@pytest.mark.parametrize("pool", ["gevent", "eventlet", "GEVENT"])
def test_cooperative_pools_are_named(pool: str) -> None:
    """gevent and eventlet are refused, naming the pools that work."""
    problem = worker_problem(pool, None, SETTINGS)
    assert problem is not None
    assert "prefork, threads, solo" in problem


@pytest.mark.parametrize("pool", ["prefork", "threads", "solo"])
def test_supported_pools_pass(pool: str) -> None:
    """prefork, threads and solo start."""
    assert worker_problem(pool, None, SETTINGS) is None
