"""Redis failing after the send lease was taken and before sendSingle: the retry sends.

The request provably never left, so the delivery gives its own lease back once Redis takes
writes again; the retry then sends, instead of finding that lease busy and leaving the send to
the sweep's ``outcome_unknown``. Once the request may have left, nothing is given back.
"""

from __future__ import annotations

import hashlib
from typing import Any

import fakeredis
import redis

from tasks.state import scripts
from tests.unit.delivery.test_steps_after_the_send import CountingEngage, run_send_task, runtime

POLICY_GATE = hashlib.sha1(scripts.source("policy_gate").encode()).hexdigest()  # noqa: S324  (Redis's script id)
BEGIN_SEND = hashlib.sha1(scripts.source("begin_send").encode()).hexdigest()  # noqa: S324  (Redis's script id)


class FailingOnce(fakeredis.FakeRedis):
    """fakeredis whose script ``sha`` fails once with a lost connection (after running, if
    ``after``: its answer is lost)."""

    def __init__(self, sha: str, *, after: bool = False) -> None:
        super().__init__()
        self.sha, self.after, self.failed = sha, after, False

    def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> Any:
        """Fail the first run of ``self.sha``."""
        if sha != self.sha or self.failed:
            return super().evalsha(sha, numkeys, *keys_and_args)
        if self.after:  # a NOSCRIPT goes up as it is: redis-py loads the script and calls again
            super().evalsha(sha, numkeys, *keys_and_args)
        self.failed = True
        raise redis.ConnectionError("Connection closed by server.")


def test_redis_failing_at_the_gate_under_the_lease_retries_and_sends() -> None:
    """The gate's script fails after the lease: the retry sends, once."""
    engage = CountingEngage()
    rt = runtime(FailingOnce(POLICY_GATE), engage)
    assert run_send_task(rt) == ["retried", "sent"]
    assert engage.sends == 1
    assert rt.ledger.state("k1") == "sent"


def test_a_lease_whose_answer_was_lost_is_given_back_and_the_retry_sends() -> None:
    """begin_send took the lease but its answer was lost: given back, then sent once."""
    engage = CountingEngage()
    rt = runtime(FailingOnce(BEGIN_SEND, after=True), engage)
    assert run_send_task(rt) == ["retried", "sent"]
    assert engage.sends == 1
    assert rt.ledger.record("k1")["attempts"] == "2"


def test_a_lease_taken_since_by_another_delivery_is_not_given_back() -> None:
    """The release names one lease: another delivery's (same owner, new lease) is kept."""
    rt = runtime(fakeredis.FakeRedis(), CountingEngage())
    rt.ledger.begin_send("k1", "s1:0", 33457, lease_token="ours")
    assert rt.ledger.release_unsent("k1", "s1:0", "ours", "redis unreachable", 1.0)
    rt.ledger.begin_send("k1", "s1:0", 33457, lease_token="theirs")
    assert not rt.ledger.release_unsent("k1", "s1:0", "ours", "redis unreachable", 1.0)
    assert rt.ledger.record("k1")["state"] == "sending"
