"""Prometheus metrics: counters follow the delivery log, Engage calls are timed, Redis is gauged."""

from __future__ import annotations

import urllib.request

import fakeredis
import pytest
from prometheus_client import CollectorRegistry

from tasks.cli.metrics_sidecar import RedisStateCollector
from tasks.core.errors import RequestNotSent
from tasks.delivery import metrics
from tasks.delivery.events import log_event
from tasks.engage import EngageClient
from tasks.sandbox import Sandbox
from tasks.state.callback_outbox import CallbackOutbox
from tasks.state.dead_letters import DeadLetterStore
from tasks.state.deferrals import DeferredSends
from tasks.state.enums import Reason
from tasks.state.keys import RedisKeys
from tests.support.environments import make_settings
from tests.support.runtime import fake_runtime


def sample(name: str, **labels: str) -> float:
    """A sample of this process's registry; 0 when the series does not exist yet."""
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def store_on(client: fakeredis.FakeRedis) -> DeadLetterStore:
    """A dead-letter store with room to spare."""
    return DeadLetterStore(
        client, keys=RedisKeys("metrics-test"), max_entries=100, max_age=86400, retention=86400
    )


def worker_client(base_url: str) -> EngageClient:
    """The Engage client as a worker builds it: observed by this process's histogram."""
    return fake_runtime(make_settings(base_url)).engage


def gauges(collector: RedisStateCollector) -> CollectorRegistry:
    """A registry holding only ``collector``, as the sidecar serves it."""
    registry = CollectorRegistry()
    registry.register(collector)
    return registry


@pytest.mark.parametrize("outcome", metrics.OUTCOMES)
def test_log_event_counts_each_send_outcome(outcome: str) -> None:
    """Every outcome event moves engage_sms_sends_total for that outcome by one."""
    before = sample("engage_sms_sends_total", outcome=outcome)
    log_event(outcome, key="k-1", reason="rejected")
    assert sample("engage_sms_sends_total", outcome=outcome) == before + 1


def test_dead_lettered_event_counts_its_reason() -> None:
    """A dead_lettered event moves engage_sms_dead_letters_total for its reason only."""
    before = sample("engage_sms_dead_letters_total", reason="unknown_recipient")
    other = sample("engage_sms_dead_letters_total", reason="rejected")
    log_event("dead_lettered", key="k-2", reason="unknown_recipient", detail="no such contact")
    assert sample("engage_sms_dead_letters_total", reason="unknown_recipient") == before + 1
    assert sample("engage_sms_dead_letters_total", reason="rejected") == other


def test_retrying_event_counts_its_operation_and_no_outcome() -> None:
    """A retrying event moves engage_sms_retries_total{operation} and no sends counter."""
    before = sample("engage_sms_retries_total", operation="message/sendSingle")
    sends = [sample("engage_sms_sends_total", outcome=o) for o in metrics.OUTCOMES]
    log_event("retrying", key="k-3", operation="message/sendSingle", retry_in=1.0)
    assert sample("engage_sms_retries_total", operation="message/sendSingle") == before + 1
    assert [sample("engage_sms_sends_total", outcome=o) for o in metrics.OUTCOMES] == sends


def test_engage_call_latency_is_labelled_by_operation_and_status(sandbox: Sandbox) -> None:
    """A call that Engage answers is observed under its HTTP status."""
    labels = {"operation": "system/getApiVersion", "status": "200"}
    before = sample("engage_sms_engage_call_seconds_count", **labels)
    worker_client(sandbox.base_url).api_version()
    assert sample("engage_sms_engage_call_seconds_count", **labels) == before + 1


def test_engage_call_without_answer_is_labelled_by_error_class() -> None:
    """A call that never reached Engage is observed under the error class, not a status."""
    labels = {"operation": "system/getApiVersion", "status": "RequestNotSent"}
    before = sample("engage_sms_engage_call_seconds_count", **labels)
    client = worker_client("http://127.0.0.1:9/api/rest/v19")
    with pytest.raises(RequestNotSent):
        client.api_version()
    assert sample("engage_sms_engage_call_seconds_count", **labels) == before + 1


def test_collector_reports_dead_letter_depth_by_reason() -> None:
    """The gauge counts the store's entries per reason, zero for reasons with none."""
    client = fakeredis.FakeRedis()
    store = store_on(client)
    for key, reason in (
        ("a", Reason.REJECTED),
        ("b", Reason.REJECTED),
        ("c", Reason.OUTCOME_UNKNOWN),
    ):
        client.hset(f"metrics-test:send:{key}", "state", "queued")  # a send has a record
        store.add(key, reason=reason, detail="test", error=None, task_ids=["t1", "t2"])
    registry = gauges(RedisStateCollector(dead_letters=store, broker=client))
    depth = "engage_sms_dead_letter_depth"
    assert registry.get_sample_value(depth, {"reason": "rejected"}) == 2
    assert registry.get_sample_value(depth, {"reason": "outcome_unknown"}) == 1
    assert registry.get_sample_value(depth, {"reason": "auth_failed"}) == 0


def test_collector_reports_each_lane_queue_length() -> None:
    """One series per lane: the length of that lane queue's list on the broker."""
    client = fakeredis.FakeRedis()
    client.rpush("engage.urgent", "m1")
    client.rpush("engage.bulk", "m2", "m3", "m4")
    registry = gauges(RedisStateCollector(dead_letters=store_on(client), broker=client))
    lengths = {
        queue: registry.get_sample_value("engage_sms_queue_length", {"queue": queue})
        for queue in ("engage.urgent", "engage.normal", "engage.bulk")
    }
    assert lengths == {"engage.urgent": 1, "engage.normal": 0, "engage.bulk": 3}


def test_collector_reports_callbacks_waiting_to_be_published() -> None:
    """The callbacks gauge counts the outbox: keys whose completion callback is still due."""
    client = fakeredis.FakeRedis()
    keys = RedisKeys("metrics-test")
    client.zadd(keys.callbacks, {"k1": 1.0, "k2": 2.0})
    collector = RedisStateCollector(
        dead_letters=store_on(client), broker=None, callbacks=CallbackOutbox(client, keys=keys)
    )
    assert gauges(collector).get_sample_value("engage_sms_callbacks_pending") == 2


def test_collector_reports_sends_deferred_for_quiet_hours() -> None:
    """The deferred gauge counts sends held in Redis until quiet hours end."""
    client = fakeredis.FakeRedis()
    keys = RedisKeys("metrics-test")
    client.zadd(keys.deferred, {"k1": 1.0, "k2": 2.0, "k3": 3.0})
    collector = RedisStateCollector(
        dead_letters=store_on(client),
        broker=None,
        deferrals=DeferredSends(client, keys=keys, retention=60),
    )
    assert gauges(collector).get_sample_value("engage_sms_deferred_sends") == 3


def test_collector_reports_redis_down_instead_of_failing_the_scrape() -> None:
    """With Redis unreachable the scrape still answers, with engage_sms_redis_up 0."""
    server = fakeredis.FakeServer()
    server.connected = False
    client = fakeredis.FakeRedis(server=server)
    registry = gauges(RedisStateCollector(dead_letters=store_on(client), broker=client))
    assert registry.get_sample_value("engage_sms_redis_up") == 0
    assert registry.get_sample_value("engage_sms_queue_length", {"queue": "engage.normal"}) is None


def test_serve_exposes_the_registry_over_http() -> None:
    """serve() answers GET /metrics with the registry's samples in the text format."""
    client = fakeredis.FakeRedis()
    store = store_on(client)
    client.hset("metrics-test:send:x", "state", "queued")  # a send has a record
    store.add("x", reason=Reason.WORKER_LOST, detail="test", error=None, task_ids=["t"])
    registry = gauges(RedisStateCollector(dead_letters=store, broker=None))
    server, thread = metrics.serve(0, host="127.0.0.1", registry=registry)
    try:
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert 'engage_sms_dead_letter_depth{reason="worker_lost"} 1.0' in text


def test_worker_endpoint_listens_on_loopback_by_default() -> None:
    """serve() without a host, as the worker starts it by default, binds 127.0.0.1 only."""
    server, _ = metrics.serve(0, registry=CollectorRegistry())
    try:
        assert server.server_address[0] == "127.0.0.1"
    finally:
        server.shutdown()
        server.server_close()


def test_collector_reports_dead_letters_over_the_bound() -> None:
    """Entries that left the store at its size bound are a gauge of their own."""
    client = fakeredis.FakeRedis()
    store = DeadLetterStore(
        client, keys=RedisKeys("metrics-test"), max_entries=1, max_age=86400, retention=86400
    )
    for key in ("a", "b", "c"):
        client.hset(f"metrics-test:send:{key}", "state", "queued")
        store.add(key, reason=Reason.REJECTED, detail="test", error=None, task_ids=["t"])
    registry = gauges(RedisStateCollector(dead_letters=store, broker=client))
    assert registry.get_sample_value("engage_sms_dead_letters_over_bound") == 2


def test_second_worker_on_a_host_takes_the_next_free_port() -> None:
    """ENGAGE_METRICS_PORT taken by another worker: this one serves on the next port."""
    first, _ = metrics.serve(0, registry=CollectorRegistry())
    taken = first.server_port
    try:
        second, _ = metrics.serve_first_free(taken)
        try:
            # The next port, unless something else on the machine holds that one too.
            assert taken < second.server_port < taken + metrics.WORKER_PORT_SPAN
        finally:
            second.shutdown()
            second.server_close()
    finally:
        first.shutdown()
        first.server_close()
