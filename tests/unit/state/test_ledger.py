"""The idempotency ledger's state machine, on fakeredis."""

from __future__ import annotations

import threading

import fakeredis

from tasks.core.request import build_send_request
from tasks.state.keys import RedisKeys
from tasks.state.ledger import DeliveryLedger

KEYS = RedisKeys("t")
REQUEST = build_send_request(23541, mobile="+48505606707", parameters={"firstName": "Ann"})
OTHER = build_send_request(23541, mobile="+48505606707", parameters={"firstName": "Bob"})


def ledger(client: fakeredis.FakeRedis | None = None, lease: float = 60) -> DeliveryLedger:
    """A ledger on fakeredis."""
    return DeliveryLedger(client or fakeredis.FakeRedis(), keys=KEYS, retention=3600, lease=lease)


def test_first_claim_creates_a_queued_record() -> None:
    """A new key is created in state queued with the task id."""
    claim = ledger().claim("k1", REQUEST, ["r1", "s1"])
    assert (claim.outcome, claim.state, claim.task_id) == ("created", "queued", "s1")


def test_same_key_same_request_returns_the_existing_handle() -> None:
    """A repeated enqueue gets the first task id back."""
    book = ledger()
    book.claim("k1", REQUEST, ["r1", "s1"])
    again = book.claim("k1", REQUEST, ["r2", "s2"])
    assert (again.outcome, again.task_id) == ("exists", "s1")


def test_same_key_different_request_is_a_conflict() -> None:
    """Another request under a used key is refused."""
    book = ledger()
    book.claim("k1", REQUEST, ["r1", "s1"])
    assert book.claim("k1", OTHER, ["r2", "s2"]).outcome == "conflict"


def test_concurrent_claims_create_exactly_once() -> None:
    """Many threads claiming one key: one creates, the rest see it."""
    book = ledger()
    outcomes: list[str] = []
    barrier = threading.Barrier(16)

    def claim(i: int) -> None:
        barrier.wait()
        outcomes.append(book.claim("k1", REQUEST, [f"r{i}", f"s{i}"]).outcome)

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes).count("created") == 1
    assert len(outcomes) == 16


def test_record_expires_after_retention() -> None:
    """The record has a TTL of the retention."""
    client = fakeredis.FakeRedis()
    ledger(client).claim("k1", REQUEST, ["r1", "s1"])
    assert 3590 <= client.ttl(KEYS.send("k1")) <= 3600


def test_release_unpublished_forgets_the_claim() -> None:
    """A claim whose publish failed is removed, so the caller may try again."""
    book = ledger()
    book.claim("k1", REQUEST, ["r1", "s1"])
    assert book.release_unpublished("k1", "s1")
    assert book.claim("k1", REQUEST, ["r2", "s2"]).outcome == "created"


def test_begin_step_counts_deliveries_and_reads_the_peeked_keys() -> None:
    """One call: the state, the attempt's delivery count, other keys' values (None if absent)."""
    client = fakeredis.FakeRedis()
    book = ledger(client)
    book.claim("k1", REQUEST, ["r1", "s1"])
    client.set("t:flag", "1")
    first = book.begin_step("k1", "r1:0:resolve", peek=["t:flag", "t:absent"])
    second = book.begin_step("k1", "r1:0:resolve")
    assert (first.state, first.deliveries, first.peeked) == ("queued", 1, ["1", None])
    assert (second.deliveries, second.peeked) == (2, [])


def test_begin_step_on_an_unknown_key_writes_nothing() -> None:
    """No record: state None, nothing counted, no half-made hash left behind."""
    client = fakeredis.FakeRedis()
    step = ledger(client).begin_step("k1", "r1:0:resolve", peek=["t:flag"])
    assert (step.state, step.deliveries, step.peeked) == (None, 0, [None])
    assert client.exists(KEYS.send("k1")) == 0


def test_begin_send_is_blocked_while_a_blocking_key_exists() -> None:
    """A blocking key (the credentials flag) refuses the lease and changes nothing."""
    client = fakeredis.FakeRedis()
    book = ledger(client)
    book.claim("k1", REQUEST, ["r1", "s1"])
    client.set("t:flag", "1")
    assert book.begin_send("k1", "s1:0", 33457, blocked_by=["t:flag"]).outcome == "blocked"
    assert book.state("k1") == "queued"
    client.delete("t:flag")
    assert book.begin_send("k1", "s1:0", 33457, blocked_by=["t:flag"]).outcome == "acquired"


def test_begin_send_takes_the_lease_once() -> None:
    """The first delivery acquires; a concurrent other delivery is told busy."""
    book = ledger()
    book.claim("k1", REQUEST, ["r1", "s1"])
    assert book.begin_send("k1", "s1:0", 33457).outcome == "acquired"
    assert book.begin_send("k1", "s1-copy:0", 33457).outcome == "busy"


def test_redelivery_of_the_same_attempt_within_its_lease_is_busy() -> None:
    """The same message arriving again while its lease runs is no proof its holder died."""
    book = ledger()
    book.claim("k1", REQUEST, ["r1", "s1"])
    book.begin_send("k1", "s1:0", 33457)
    assert book.begin_send("k1", "s1:0", 33457).outcome == "busy"
    assert book.begin_send("k1", "s1:0", 33457, resend_interrupted=True).outcome == "busy"


def test_lapsed_lease_is_interrupted() -> None:
    """A lease past its time means the holder is gone."""
    book = ledger(lease=-1)
    book.claim("k1", REQUEST, ["r1", "s1"])
    book.begin_send("k1", "s1:0", 33457)
    assert book.begin_send("k1", "other:0", 33457).outcome == "interrupted"


def test_interrupted_send_may_be_resent_only_when_asked() -> None:
    """With resend_interrupted a lapsed lease is taken again (the retry setting)."""
    book = ledger(lease=-1)
    book.claim("k1", REQUEST, ["r1", "s1"])
    book.begin_send("k1", "s1:0", 33457)
    start = book.begin_send("k1", "s1:0", 33457, resend_interrupted=True)
    assert (start.outcome, start.attempts) == ("acquired", 2)


def test_sent_is_final() -> None:
    """After mark_sent, no delivery may send again."""
    book = ledger()
    book.claim("k1", REQUEST, ["r1", "s1"])
    book.begin_send("k1", "s1:0", 33457)
    book.mark_sent("k1")
    assert book.begin_send("k1", "s1:1", 33457).outcome == "sent"
    assert book.begin_send("k1", "s1:1", 33457, resend_interrupted=True).outcome == "sent"
    assert book.state("k1") == "sent"


def test_retrying_releases_the_lease_for_the_next_attempt() -> None:
    """After a failure that proves nothing was sent, the retry acquires again."""
    book = ledger()
    book.claim("k1", REQUEST, ["r1", "s1"])
    book.begin_send("k1", "s1:0", 33457)
    assert book.mark_retrying("k1", "s1:0", "HTTP 503", 1.0)
    assert book.state("k1") == "retrying"
    assert book.begin_send("k1", "s1:1", 33457).outcome == "acquired"


def test_retrying_by_a_stranger_does_not_steal_the_lease() -> None:
    """Only the lease holder can release it."""
    book = ledger()
    book.claim("k1", REQUEST, ["r1", "s1"])
    book.begin_send("k1", "s1:0", 33457)
    assert not book.mark_retrying("k1", "other:0", "x", 1.0)
    assert book.state("k1") == "sending"


def test_status_is_masked_and_readable() -> None:
    """Status shows the state and the masked recipient, never the number."""
    book = ledger()
    book.claim("k1", REQUEST, ["r1", "s1"])
    status = book.status("k1")
    assert status["state"] == "queued"
    assert status["recipient"] == "MOBILE:48*******07"
    assert "48505606707" not in str(status)
    assert status["task_ids"] == ["r1", "s1"]


def test_unknown_key_status() -> None:
    """An unknown key reports state unknown."""
    assert ledger().status("nope") == {"key": "nope", "state": "unknown"}


def test_finished_sends_leave_the_inflight_index() -> None:
    """In-flight keys are indexed until sent (for the stuck-send sweeper)."""
    client = fakeredis.FakeRedis()
    book = ledger(client)
    book.claim("k1", REQUEST, ["r1", "s1"])
    assert book.stale_inflight(older_than=-1) == ["k1"]
    book.begin_send("k1", "s1:0", 33457)
    book.mark_sent("k1")
    assert book.stale_inflight(older_than=-1) == []


def test_mark_sent_writes_nothing_into_a_missing_record() -> None:
    """A record lost before the 204 is reported, never recreated holding only 'sent'."""
    client = fakeredis.FakeRedis()
    assert ledger(client).mark_sent("gone") is None
    assert client.keys("*") == []


def test_a_failure_is_not_counted_into_a_missing_record() -> None:
    """Counting a failure never creates a record without a request."""
    client = fakeredis.FakeRedis()
    ledger(client).count_failure("gone", "send")
    assert client.keys("*") == []


def test_status_of_a_damaged_record_answers() -> None:
    """A record holding only its state (an older version's stub) answers, marked damaged."""
    client = fakeredis.FakeRedis()
    client.hset("t:send:stub", mapping={"state": "sent", "sent_at": "1700000000.0"})
    status = ledger(client).status("stub")
    assert (status["state"], status["sent_at"]) == ("sent", "2023-11-14T22:13:20.000+00:00")
    assert "damaged" in status


def test_cancel_stops_queued_and_retrying_sends_only() -> None:
    """Queued or retrying: cancelled; sending or final: left, and reported as found."""
    book = ledger()
    book.claim("q", REQUEST, ["r1", "s1"])
    book.claim("s", OTHER, ["r2", "s2"])
    book.begin_send("s", "s2:0", 33457)
    assert book.cancel("q") == "cancelled_now"
    assert book.cancel("q") == "cancelled"
    assert book.cancel("s") == "sending"
    assert book.cancel("nope") == "unknown"
    assert book.begin_send("q", "s1:0", 33457).outcome == "cancelled"
    assert book.unfinished() == ["s"]
