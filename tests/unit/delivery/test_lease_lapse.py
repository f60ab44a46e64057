"""A send lease that lapsed while its holder lived (a starved worker thread), on fakeredis.

The holder renews its lease at the gate just before calling Engage, and whoever acts on a lapsed
lease (the sweep, a second copy) does so only while it is still lapsed, in the step that acts.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tasks.core.request import build_send_request
from tasks.delivery.runtime import Runtime
from tasks.state.enums import Reason
from tasks.state.keys import RedisKeys
from tasks.worker.housekeeping import sweep
from tests.support.environments import make_settings
from tests.support.runtime import fake_runtime, installed

REQUEST = build_send_request(23541, mobile="+48505606707")
HOLDER = "k1-t1:0"


@pytest.fixture
def rt() -> Iterator[Runtime]:
    """A fakeredis runtime (lease 3 s) with k1 claimed and leased by HOLDER."""
    runtime = fake_runtime(make_settings())
    runtime.ledger.claim("k1", REQUEST, ["k1-t0", "k1-t1"])
    assert runtime.ledger.begin_send("k1", HOLDER, 33457).outcome == "acquired"
    with installed(runtime):
        yield runtime


def lapse(rt: Runtime) -> None:
    """The holder's thread stalls past its lease: the lease ran out a second ago."""
    lease_until = float(rt.ledger.record("k1")["lease_until"])
    shift = lease_until - rt.ledger.now() + 1.0
    keys = RedisKeys(rt.settings.key_prefix)
    rt.redis.hset(keys.send("k1"), "lease_until", repr(lease_until - shift))
    rt.redis.zincrby(keys.inflight, -shift - rt.settings.lease_seconds, "k1")


def test_the_gate_renews_a_lease_that_lapsed_before_engage_was_called(rt: Runtime) -> None:
    """A holder late at the gate gets a whole lease from there: the sweep leaves it sending."""
    lapse(rt)
    assert rt.gate.check("k1", HOLDER, suppression=None, cap=None) == "ok"
    assert sweep(rt).dead_lettered == []
    assert rt.ledger.state("k1") == "sending"


def test_a_copy_finds_the_renewed_lease_busy(rt: Runtime) -> None:
    """A second copy after the renewal is busy, not told the holder died mid-send."""
    lapse(rt)
    rt.gate.check("k1", HOLDER, suppression=None, cap=None)
    assert rt.ledger.begin_send("k1", "copy:0", 33457).outcome == "busy"


def test_a_lapsed_lease_dead_letter_spares_a_lease_given_back(rt: Runtime) -> None:
    """Seen lapsed, then given back after a 429: the dead letter asked for a lapse refuses."""
    lapse(rt)
    assert rt.ledger.mark_retrying("k1", HOLDER, "429 Too Many Requests", 1.0)
    added = rt.dead_letters.add(
        "k1", reason=Reason.OUTCOME_UNKNOWN, detail="", error=None, task_ids=[], lapsed_lease=True
    )
    assert not added
    assert rt.ledger.state("k1") == "retrying"


def test_a_lapsed_lease_dead_letter_spares_a_live_lease(rt: Runtime) -> None:
    """Seen lapsed, then renewed by its holder: the dead letter asked for a lapse refuses."""
    added = rt.dead_letters.add(
        "k1", reason=Reason.OUTCOME_UNKNOWN, detail="", error=None, task_ids=[], lapsed_lease=True
    )
    assert not added
    assert rt.ledger.state("k1") == "sending"


def test_a_lapsed_lease_dead_letter_takes_a_lapsed_lease(rt: Runtime) -> None:
    """Still lapsed when it is moved: dead-lettered outcome_unknown."""
    lapse(rt)
    added = rt.dead_letters.add(
        "k1", reason=Reason.OUTCOME_UNKNOWN, detail="", error=None, task_ids=[], lapsed_lease=True
    )
    assert added
    assert rt.ledger.state("k1") == "dead_lettered"
