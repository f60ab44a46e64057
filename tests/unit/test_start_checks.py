"""What a worker's command line may ask for: its own lanes, and the pools that work."""

from __future__ import annotations

import pytest

from tasks.settings import load_settings
from tasks.worker.start_checks import option_value, worker_problem

SETTINGS = load_settings({"ENGAGE_KEY_PREFIX": "acme"})


@pytest.mark.parametrize(
    "argv",
    [["-Q", "a,b"], ["-Qa,b"], ["--queues", "a,b"], ["--queues=a,b"], ["worker", "-Q", "a,b"]],
)
def test_queues_are_read_in_every_spelling(argv: list[str]) -> None:
    """-Q a,b, -Qa,b, --queues a,b and --queues=a,b all name the same queues."""
    assert option_value(argv, "-Q", "--queues") == "a,b"


def test_own_lanes_and_no_queues_are_accepted() -> None:
    """A worker of acme may consume any of acme's lanes, or all of them without -Q."""
    assert worker_problem(["worker", "-Q", "acme.urgent,acme.bulk"], SETTINGS) is None
    assert worker_problem(["worker", "--pool", "threads"], SETTINGS) is None


@pytest.mark.parametrize("pool", ["gevent", "eventlet", "GEVENT"])
def test_cooperative_pools_are_named(pool: str) -> None:
    """gevent and eventlet are refused, naming the pools that work."""
    problem = worker_problem(["worker", "-P", pool], SETTINGS)
    assert problem is not None
    assert "prefork, threads, solo" in problem


@pytest.mark.parametrize("pool", ["prefork", "threads", "solo"])
def test_supported_pools_pass(pool: str) -> None:
    """prefork, threads and solo start."""
    assert worker_problem(["worker", f"--pool={pool}"], SETTINGS) is None
