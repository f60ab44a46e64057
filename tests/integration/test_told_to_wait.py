"""A real worker told to wait with no wait at all (``Retry-After: 0``, a past date) by the sandbox.

Before the floor and the budget, one send made 95 calls in 10 s and would have gone on for the
whole retry window (30 minutes).
"""

from __future__ import annotations

import itertools

import pytest

from tasks.api import delivery_status, send_prepared_sms
from tasks.delivery.retry_policy import TOLD_WAIT_MAX_CALLS
from tasks.sandbox import Sandbox
from tests.integration.conftest import WorkerFactory, wait_for
from tests.support.environments import WORKER_ENV

pytestmark = pytest.mark.integration

#: The fast profile's base delay: the floor's cap in these tests.
BASE_DELAY = float(WORKER_ENV["ENGAGE_RETRY_BASE_DELAY"])


@pytest.mark.parametrize(
    ("operation", "value"), [("contact/get", "0"), ("message/sendSingle", "past")]
)
def test_endless_retry_after_zero_ends_in_a_bounded_number_of_calls(
    start_workers: WorkerFactory, sandbox: Sandbox, operation: str, value: str
) -> None:
    """Every call answered 429 with no wait: calls a floor apart, at most a budget of them."""
    sandbox.state.set_faults({"script": {operation: [f"retry_after:{value}"] * 60}})
    start_workers(sandbox.base_url)
    send_prepared_sms(23541, mobile="+48505606707", idempotency_key="told-0")
    status = wait_for(
        lambda: (s := delivery_status("told-0"))["state"] == "dead_lettered" and s,
        timeout=40,
        what="the send to give up",
    )
    assert status["reason"] == "retries_exhausted"
    calls = sandbox.state.calls_to(operation)
    assert len(calls) == TOLD_WAIT_MAX_CALLS
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(calls)]
    assert min(gaps) >= BASE_DELAY
    assert sandbox.state.sends == {}
