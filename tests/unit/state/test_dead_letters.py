"""The dead-letter store, on fakeredis."""

from __future__ import annotations

import fakeredis

from tasks.core.request import build_send_request
from tasks.state.dead_letters import DeadLetterStore
from tasks.state.enums import Reason
from tasks.state.keys import RedisKeys
from tasks.state.ledger import DeliveryLedger
from tests.support.virtual_clock import VirtualClock

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
    book: DeliveryLedger,
    dlq: DeadLetterStore,
    key: str,
    reason: Reason = Reason.UNKNOWN_RECIPIENT,
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
    assert not dlq.add("k1", reason=Reason.OUTCOME_UNKNOWN, detail="", error=None, task_ids=[])
    assert book.state("k1") == "sent"
    assert dlq.get("k1") is None


def test_filter_by_reason_and_depth() -> None:
    """Entries can be listed per reason, and counted per reason."""
    book, dlq, _ = stores()
    dead(book, dlq, "k1", Reason.UNKNOWN_RECIPIENT)
    dead(book, dlq, "k2", Reason.REJECTED)
    dead(book, dlq, "k3", Reason.REJECTED)
    assert sorted(e["key"] for e in dlq.entries(reason=Reason.REJECTED)) == ["k2", "k3"]
    assert dlq.depth_by_reason() == {"unknown_recipient": 1, "rejected": 2}


def test_size_bound_drops_the_oldest(clock: VirtualClock) -> None:
    """Past max_entries the oldest entries go."""
    book, dlq, _ = stores(max_entries=2)
    for key in ("k1", "k2", "k3"):
        dead(book, dlq, key)
        clock.advance(0.002)
    assert dlq.keys() == ["k3", "k2"]


def test_age_bound_drops_old_entries(clock: VirtualClock) -> None:
    """Entries older than max_age are dropped by cleanup, and only those."""
    book, dlq, _ = stores(max_age=60)
    dead(book, dlq, "k1")
    clock.advance(59)
    assert dlq.cleanup() == 0
    dead(book, dlq, "k2")
    clock.advance(2)
    assert dlq.cleanup() == 1
    assert dlq.keys() == ["k2"]


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
    dead(book, dlq, "k1", Reason.UNKNOWN_RECIPIENT)
    dead(book, dlq, "k2", Reason.REJECTED)
    assert dlq.purge(reason=Reason.REJECTED) == 1
    assert dlq.keys() == ["k1"]


def test_a_dead_letter_found_sent_leaves_no_reason_behind() -> None:
    """An outcome_unknown send later recorded as sent is gone from the depth count too."""
    book, dlq, _ = stores()
    book.claim("k1", REQUEST, ["r", "s"])
    book.begin_send("k1", "s:0", 1)
    assert dlq.add("k1", reason=Reason.OUTCOME_UNKNOWN, detail="", error=None, task_ids=[])
    book.mark_sent("k1")
    assert (dlq.entries(), dlq.keys(reason=Reason.OUTCOME_UNKNOWN)) == ([], [])
    assert dlq.depth_by_reason() == {}


def test_every_way_out_of_the_store_takes_the_reason_along() -> None:
    """The size bound, a replay, a purge and the age bound each take the reason out too."""
    book, dlq, client = stores(max_entries=2)
    for key in ("k1", "k2", "k3"):
        dead(book, dlq, key)  # k3 pushes k1 out (size bound)
    assert dlq.depth_by_reason() == {"unknown_recipient": 2}
    assert dlq.replay("k2", ["r2", "s2"])[0] == "requeued"
    assert dlq.depth_by_reason() == {"unknown_recipient": 1}
    dead(book, dlq, "k4", Reason.REJECTED)
    assert dlq.purge(reason=Reason.REJECTED) == 1
    assert dlq.depth_by_reason() == {"unknown_recipient": 1}
    ageless = DeadLetterStore(client, keys=KEYS, max_entries=2, max_age=0, retention=600)
    assert ageless.cleanup() == 1  # k3, older than 0 s (age bound)
    assert [client.exists(k) for k in (KEYS.dlq, KEYS.dlq_entries, KEYS.dlq_reasons)] == [0, 0, 0]


def test_cleanup_drops_reasons_left_without_an_entry() -> None:
    """A reason whose entry is gone (left by an older mark_sent) stops being counted."""
    book, dlq, client = stores()
    dead(book, dlq, "k1", Reason.REJECTED)
    client.hset(KEYS.dlq_reasons, "gone", Reason.OUTCOME_UNKNOWN)
    assert dlq.cleanup() == 0
    assert dlq.depth_by_reason() == {"rejected": 1}


def test_entries_over_the_bound_leave_the_listing_but_stay_replayable() -> None:
    """Four dead letters into a store of two: the two oldest are over the bound, and replay."""
    book, dlq, _ = stores(max_entries=2)
    for key in ("a", "b", "c", "d"):
        dead(book, dlq, key)
    assert sorted(dlq.keys()) == ["c", "d"]
    assert dlq.over_bound() == ["a", "b"]
    assert book.state("a") == "dead_lettered"
    outcome, request = dlq.replay("a", ["r2", "s2"])
    assert (outcome, request) == ("requeued", REQUEST)
    assert dlq.over_bound() == ["b"]
    assert book.state("a") == "queued"


def test_a_purged_entry_is_still_missing_for_replay() -> None:
    """Purging is deliberate: only entries over the bound fall back to their records."""
    book, dlq, _ = stores()
    dead(book, dlq, "k1")
    dlq.purge()
    assert dlq.replay("k1", ["r2", "s2"]) == ("missing", None)


def test_no_entry_and_no_partial_record_without_a_record() -> None:
    """A send with no record is not dead-lettered into a stub: the caller writes it first."""
    _, dlq, client = stores()
    assert dlq.add("gone", reason=Reason.REJECTED, detail="d", error=None, task_ids=[]) is None
    assert client.keys("*") == []


def test_a_cancelled_send_is_not_dead_lettered() -> None:
    """Cancelled is final: a late failure of a step leaves it cancelled."""
    book, dlq, _ = stores()
    book.claim("k1", REQUEST, ["r1", "s1"])
    assert book.cancel("k1") == "cancelled_now"
    assert dlq.add("k1", reason=Reason.REJECTED, detail="d", error=None, task_ids=[]) is False
    assert book.state("k1") == "cancelled"
