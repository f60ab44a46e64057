"""The dead-letter store, on fakeredis."""

from __future__ import annotations

import time

import fakeredis

from tasks.request import build_send_request
from tasks.state.dead_letters import DeadLetterStore
from tasks.state.ledger import DeliveryLedger, RedisKeys

KEYS = RedisKeys("t")
REQUEST = build_send_request(23541, mobile="+48505606707", parameters={"firstName": "Ann"})


def stores(
    max_entries: int = 100, max_age: float = 3600
) -> tuple[DeliveryLedger, DeadLetterStore, fakeredis.FakeRedis]:
    """A ledger and a dead-letter store sharing one fakeredis."""
    client = fakeredis.FakeRedis()
    book = DeliveryLedger(client, keys=KEYS, retention=600, lease=60)
    dlq = DeadLetterStore(
        client, keys=KEYS, max_entries=max_entries, max_age=max_age, retention=600
    )
    return book, dlq, client


def dead(
    book: DeliveryLedger, dlq: DeadLetterStore, key: str, reason: str = "unknown_recipient"
) -> None:
    """Claim ``key`` and dead-letter it."""
    book.claim(key, REQUEST, [f"r-{key}", f"s-{key}"])
    assert dlq.add(key, reason=reason, detail="d", error={"status": 400}, task_ids=["r", "s"])


def test_add_flips_the_ledger_and_keeps_an_entry() -> None:
    """The record becomes dead_lettered with its reason; the entry has the full context."""
    book, dlq, _ = stores()
    dead(book, dlq, "k1")
    assert book.status("k1")["reason"] == "unknown_recipient"
    entry = dlq.get("k1")
    assert entry is not None
    assert entry["reason"] == "unknown_recipient"
    assert entry["error"] == {"status": 400}
    assert entry["request"]["recipient"] == "MOBILE:48*******07"
    assert entry["task_ids"] == ["r", "s"]
    assert entry["first_failure_at"]
    assert entry["last_failure_at"]


def test_listing_masks_recipients() -> None:
    """Listed entries never show the number."""
    book, dlq, _ = stores()
    dead(book, dlq, "k1")
    assert "48505606707" not in str(dlq.entries())


def test_a_sent_send_is_never_dead_lettered() -> None:
    """add refuses once the ledger says sent."""
    book, dlq, _ = stores()
    book.claim("k1", REQUEST, ["r", "s"])
    book.begin_send("k1", "s:0", 1)
    book.mark_sent("k1")
    assert not dlq.add("k1", reason="outcome_unknown", detail="", error=None, task_ids=[])
    assert book.state("k1") == "sent"
    assert dlq.get("k1") is None


def test_filter_by_reason_and_depth() -> None:
    """Entries can be listed per reason, and counted per reason."""
    book, dlq, _ = stores()
    dead(book, dlq, "k1", "unknown_recipient")
    dead(book, dlq, "k2", "rejected")
    dead(book, dlq, "k3", "rejected")
    assert sorted(e["key"] for e in dlq.entries(reason="rejected")) == ["k2", "k3"]
    assert dlq.depth_by_reason() == {"unknown_recipient": 1, "rejected": 2}


def test_size_bound_drops_the_oldest() -> None:
    """Past max_entries the oldest entries go."""
    book, dlq, _ = stores(max_entries=2)
    for key in ("k1", "k2", "k3"):
        dead(book, dlq, key)
        time.sleep(0.002)
    assert dlq.keys() == ["k3", "k2"]


def test_age_bound_drops_old_entries() -> None:
    """Entries older than max_age are dropped by cleanup."""
    book, dlq, _ = stores(max_age=0.05)
    dead(book, dlq, "k1")
    time.sleep(0.1)
    assert dlq.cleanup() == 1
    assert dlq.keys() == []


def test_replay_requeues_under_the_same_key() -> None:
    """Replay moves the send back to queued with new task ids and returns the request."""
    book, dlq, _ = stores()
    dead(book, dlq, "k1")
    outcome, request = dlq.replay("k1", ["r2", "s2"])
    assert (outcome, request) == ("requeued", REQUEST)
    assert book.state("k1") == "queued"
    assert book.record("k1")["task_id"] == "s2"
    assert dlq.get("k1") is None


def test_replay_works_after_the_ledger_record_expired() -> None:
    """The entry alone is enough to recreate the record."""
    book, dlq, client = stores()
    dead(book, dlq, "k1")
    client.delete(KEYS.send("k1"))
    assert dlq.replay("k1", ["r2", "s2"])[0] == "requeued"
    assert book.claim("k1", REQUEST, ["x", "y"]).outcome == "exists"


def test_replay_of_a_missing_entry_reports_missing() -> None:
    """Nothing to replay is said so."""
    _, dlq, _ = stores()
    assert dlq.replay("nope", ["r", "s"]) == ("missing", None)


def test_dead_lettered_record_outlives_its_entry_window() -> None:
    """The ledger record is kept as long as the entry may be replayed."""
    book, dlq, client = stores(max_age=86400)
    dead(book, dlq, "k1")
    assert client.pttl(KEYS.send("k1")) > 86000 * 1000


def test_purge_by_reason() -> None:
    """Purge deletes only the named reason's entries."""
    book, dlq, _ = stores()
    dead(book, dlq, "k1", "unknown_recipient")
    dead(book, dlq, "k2", "rejected")
    assert dlq.purge(reason="rejected") == 1
    assert dlq.keys() == ["k1"]
