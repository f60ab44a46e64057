"""The sending policy in Redis (fakeredis): opt-outs, caps, deadlines, deferrals, final states."""

from __future__ import annotations

import json

import fakeredis
import pytest
import redis

from tasks.core.request import Identifier, build_send_request
from tasks.core.send_options import Priority
from tasks.delivery.runtime import Runtime
from tasks.state.enums import SendState
from tasks.state.ledger import ClaimPolicy
from tasks.state.recipient_caps import CapCheck
from tests.support.environments import make_settings
from tests.support.runtime import fake_runtime

NUMBER = "48505606707"
REQUEST = build_send_request(23541, mobile="+" + NUMBER, parameters={"code": "918273"})
MOBILE = Identifier("MOBILE", NUMBER)


@pytest.fixture
def rt() -> Runtime:
    """A runtime on fakeredis with a bulk cap of 2 a day."""
    settings = make_settings(ENGAGE_RECIPIENT_CAP="bulk=2/24h")
    return fake_runtime(settings, redis_client=fakeredis.FakeRedis())


def everything_stored(client: redis.Redis) -> str:
    """Every key name and value in Redis, as one text."""
    parts: list[str] = []
    for name in client.scan_iter():
        parts.append(str(name))
        kind = str(client.type(name))
        if "hash" in kind:
            parts.append(str(client.hgetall(name)))
        elif "zset" in kind:
            parts.append(str(client.zrange(name, 0, -1)))
        elif "string" in kind:
            parts.append(str(client.get(name)))
    return "\n".join(parts)


def test_an_opt_out_is_stored_as_a_digest_never_the_number(rt: Runtime) -> None:
    """add, contains, list (masked), remove; the number appears nowhere in Redis."""
    assert rt.suppressions.add([MOBILE]) == 1
    assert rt.suppressions.add([MOBILE]) == 0
    assert rt.suppressions.contains(MOBILE)
    assert not rt.suppressions.contains(Identifier("MOBILE", "48505606708"))
    (entry,) = rt.suppressions.entries()
    assert entry.recipient == "MOBILE:48*******07"
    assert NUMBER not in everything_stored(rt.redis)
    assert "0560670" not in everything_stored(rt.redis)
    assert rt.suppressions.remove([MOBILE]) == 1
    assert not rt.suppressions.contains(MOBILE)


def test_the_same_value_as_another_type_is_another_entry(rt: Runtime) -> None:
    """An external id that happens to equal an opted-out number is not opted out."""
    rt.suppressions.add([MOBILE])
    assert not rt.suppressions.contains(Identifier("EXTERNAL", NUMBER))


def claim(rt: Runtime, key: str, **policy: object) -> SendState:
    """Claim ``key`` for REQUEST with a policy; the state it was created in."""
    return rt.ledger.claim(key, REQUEST, ["r", "s"], policy=ClaimPolicy(**policy)).state  # type: ignore[arg-type]


def test_an_opted_out_recipient_is_suppressed_at_claim_without_the_request(rt: Runtime) -> None:
    """The record is final at once, keeps no request, and files the callback."""
    rt.suppressions.add([MOBILE])
    digest = rt.suppressions.digest(MOBILE)
    state = rt.ledger.claim(
        "k", REQUEST, ["r", "s"], on_done="app.done", policy=ClaimPolicy(suppression=digest)
    ).state
    assert state == SendState.SUPPRESSED
    record = rt.ledger.record("k")
    assert "request" not in record
    assert rt.callbacks.due_since("k") is not None
    assert rt.ledger.status("k")["recipient"] == "MOBILE:48*******07"
    assert rt.redis.zscore(rt.keys.inflight, "k") is None


def test_a_lane_not_checked_is_not_suppressed(rt: Runtime) -> None:
    """Without a digest (lane excluded) the claim queues the send."""
    rt.suppressions.add([MOBILE])
    assert claim(rt, "k", suppression=None) == SendState.QUEUED


def test_expires_in_is_counted_on_the_redis_clock(rt: Runtime) -> None:
    """expires_at = Redis TIME + expires_in, kept in the record and shown in the status."""
    seconds, micros = rt.redis.time()
    claim(rt, "k", expires_in=5.0)
    expires_at = float(rt.ledger.record("k")["expires_at"])
    assert abs(expires_at - (seconds + micros / 1e6 + 5)) < 1
    assert "expires_at" in rt.ledger.status("k")


def test_a_passed_deadline_refuses_the_lease_and_the_step_sees_it(rt: Runtime) -> None:
    """begin_step flags it, begin_send takes nothing and answers expired."""
    claim(rt, "k", send_by=1.0)  # long past on any clock
    assert rt.ledger.begin_step("k", "a", peek=["nothing"]).expired
    start = rt.ledger.begin_send("k", "s:0", 33457)
    assert start.outcome == "expired"
    assert rt.ledger.state("k") == SendState.QUEUED


def test_a_deadline_ahead_lets_the_lease_be_taken(rt: Runtime) -> None:
    """A future deadline changes nothing."""
    claim(rt, "k", expires_in=60.0)
    assert not rt.ledger.begin_step("k", "a").expired
    assert rt.ledger.begin_send("k", "s:0", 33457).outcome == "acquired"


def test_expired_is_final_with_its_callback_and_a_slim_record(rt: Runtime) -> None:
    """finish(expired): final, out of inflight, callback filed, no request kept, no dead letter."""
    rt.ledger.claim("k", REQUEST, ["r", "s"], on_done="app.done", policy=ClaimPolicy())
    assert rt.gate.finish("k", SendState.EXPIRED, "deadline passed")
    record = rt.ledger.record("k")
    assert record["state"] == "expired"
    assert "request" not in record
    assert rt.callbacks.due_since("k") is not None
    assert rt.redis.zscore(rt.keys.inflight, "k") is None
    assert rt.dead_letters.get("k") is None
    # Final: neither a second end nor a dead letter moves it.
    assert not rt.gate.finish("k", SendState.CAPPED, "again")
    assert not rt.dead_letters.add("k", reason="rejected", detail="x", error=None, task_ids=[])  # type: ignore[arg-type]
    assert rt.ledger.begin_send("k", "s:0", 33457).outcome == "expired"


def test_finish_leaves_a_send_leased_by_another_delivery(rt: Runtime) -> None:
    """Only the lease holder may end a sending send."""
    claim(rt, "k")
    rt.ledger.begin_send("k", "s:0", 33457)
    assert not rt.gate.finish("k", SendState.CAPPED, "x", owner="other:0")
    assert rt.gate.finish("k", SendState.CAPPED, "x", owner="s:0")


def take(rt: Runtime, key: str) -> str:
    """Claim, lease and pass the gate for one bulk send of ``key`` to MOBILE."""
    claim(rt, key)
    rt.ledger.begin_send(key, f"{key}:0", 33457)
    cap = rt.caps.check_for(MOBILE, Priority.BULK)
    return rt.gate.check(key, f"{key}:0", suppression=rt.suppressions.digest(MOBILE), cap=cap)


def test_the_third_bulk_send_is_capped(rt: Runtime) -> None:
    """bulk=2/24h: two pass, the third is capped."""
    assert [take(rt, k) for k in ("a", "b", "c")] == ["ok", "ok", "capped"]
    assert rt.caps.used(MOBILE, Priority.BULK) == 2


def test_a_retried_send_counts_once(rt: Runtime) -> None:
    """The cap counts idempotency keys, not attempts."""
    take(rt, "a")
    assert (
        rt.gate.check("a", "a:0", suppression=None, cap=rt.caps.check_for(MOBILE, Priority.BULK))
        == "ok"
    )
    assert rt.caps.used(MOBILE, Priority.BULK) == 1


def test_other_lanes_and_recipients_are_not_capped(rt: Runtime) -> None:
    """No cap is configured for normal; another number has its own count."""
    assert rt.caps.check_for(MOBILE, Priority.NORMAL) is None
    take(rt, "a")
    take(rt, "b")
    other = rt.caps.check_for(Identifier("MOBILE", "48505606708"), Priority.BULK)
    claim(rt, "c")
    rt.ledger.begin_send("c", "c:0", 1)
    assert rt.gate.check("c", "c:0", suppression=None, cap=other) == "ok"


def test_the_gate_sees_an_opt_out_that_came_after_the_claim(rt: Runtime) -> None:
    """Opted out while the send waited: suppressed under the lease, nothing counted."""
    claim(rt, "k", suppression=rt.suppressions.digest(MOBILE))
    rt.ledger.begin_send("k", "k:0", 33457)
    rt.suppressions.add([MOBILE])
    cap = rt.caps.check_for(MOBILE, Priority.BULK)
    assert rt.gate.check("k", "k:0", suppression=rt.suppressions.digest(MOBILE), cap=cap) == (
        "suppressed"
    )
    assert rt.caps.used(MOBILE, Priority.BULK) == 0


def test_the_gate_refuses_a_delivery_without_the_lease(rt: Runtime) -> None:
    """Another owner's gate check is 'lost'."""
    claim(rt, "k")
    rt.ledger.begin_send("k", "k:0", 33457)
    assert rt.gate.check("k", "other:0", suppression=None, cap=None) == "lost"


def test_a_deferred_claim_waits_in_redis_and_is_released_when_due(rt: Runtime) -> None:
    """Created deferred: not leasable, not in inflight; due by Redis time, released with new ids."""
    seconds, _ = rt.redis.time()
    assert claim(rt, "later", not_before=seconds + 3600.0) == SendState.DEFERRED
    assert claim(rt, "now", not_before=seconds - 1.0) == SendState.DEFERRED
    assert rt.ledger.begin_send("later", "s:0", 1).outcome == "deferred"
    assert rt.redis.zscore(rt.keys.inflight, "later") is None
    assert rt.deferrals.due() == ["now"]
    released = rt.deferrals.release("now", ["r2", "s2"])
    assert not isinstance(released, str)
    assert released.request == REQUEST
    assert released.priority == Priority.NORMAL
    record = rt.ledger.record("now")
    assert record["state"] == "queued"
    assert json.loads(record["task_ids"]) == ["r2", "s2"]
    assert "not_before" not in record
    assert rt.deferrals.due() == []
    assert rt.deferrals.release("now", ["r3", "s3"]) == "gone"


def test_a_deferred_send_whose_deadline_passed_is_released_as_expired(rt: Runtime) -> None:
    """Expired in the deferred set: final, callback filed, nothing to publish."""
    rt.ledger.claim(
        "k",
        REQUEST,
        ["r", "s"],
        on_done="app.done",
        policy=ClaimPolicy(send_by=2.0, not_before=1.0),
    )
    assert rt.deferrals.release("k", ["r2", "s2"]) == "expired"
    assert rt.ledger.state("k") == SendState.EXPIRED
    assert rt.callbacks.due_since("k") is not None


def test_a_queued_send_is_deferred_by_the_worker(rt: Runtime) -> None:
    """defer: queued -> deferred, out of inflight, into the deferred set; not twice."""
    claim(rt, "k")
    assert rt.deferrals.defer("k", 2_000_000_000.0)
    assert rt.ledger.state("k") == SendState.DEFERRED
    assert rt.redis.zscore(rt.keys.deferred, "k") == 2_000_000_000.0
    assert rt.redis.zscore(rt.keys.inflight, "k") is None
    assert not rt.deferrals.defer("k", 2_000_000_000.0)
    assert rt.ledger.status("k")["not_before"].startswith("2033-05-18")


def test_a_retrying_send_cannot_be_moved_off_a_policy_end(rt: Runtime) -> None:
    """mark_retrying leaves a capped send capped."""
    claim(rt, "k")
    rt.gate.finish("k", SendState.CAPPED, "x")
    assert not rt.ledger.mark_retrying("k", "s:0", "boom", 1.0)
    assert rt.ledger.state("k") == SendState.CAPPED


def test_cap_check_shape() -> None:
    """A cap check carries its window in milliseconds."""
    rt = fake_runtime(make_settings(ENGAGE_RECIPIENT_CAP="normal=3/2m"))
    cap = rt.caps.check_for(MOBILE, Priority.NORMAL)
    assert isinstance(cap, CapCheck)
    assert (cap.limit, cap.window_ms) == (3, 120_000)
    assert NUMBER not in cap.key


def test_a_sent_record_keeps_only_what_idempotency_and_status_need(rt: Runtime) -> None:
    """No request, task ids or counters; a fingerprint prefix still tells requests apart."""
    rt.ledger.claim("k", REQUEST, ["r", "s"], on_done="app.done", policy=ClaimPolicy())
    rt.ledger.count_failure("k", "send")
    rt.ledger.begin_send("k", "s:0", 33457)
    rt.ledger.mark_sent("k")
    record = rt.ledger.record("k")
    assert set(record) == {
        "state",
        "fingerprint",
        "created_at",
        "sent_at",
        "contact_id",
        "recipient",
        "on_done",
        "task_id",
        "attempts",
    }
    assert len(record["fingerprint"]) == 16
    assert NUMBER not in str(record)
    assert rt.ledger.claim("k", REQUEST, ["r2", "s2"]).outcome == "exists"
    other = build_send_request(23541, mobile="+" + NUMBER, parameters={"code": "000000"})
    assert rt.ledger.claim("k", other, ["r3", "s3"]).outcome == "conflict"
    status = rt.ledger.status("k")
    assert (status["state"], status["recipient"], status["contact_id"]) == (
        "sent",
        "MOBILE:48*******07",
        "33457",
    )
    assert status["updated_at"] == status["sent_at"]
    assert status["priority"] == "normal"
    assert status["task_id"] == "s"


def test_enqueue_checks_opt_outs_without_making_the_digest_secret() -> None:
    """No secret yet means no opt-out yet: the check makes none, so enqueue leaves nothing."""
    rt = fake_runtime(redis_client=fakeredis.FakeRedis())
    assert rt.suppressions.lookup_digest(MOBILE) is None
    assert rt.redis.exists(rt.keys.hmac_secret) == 0
    rt.suppressions.add([MOBILE])
    assert rt.suppressions.lookup_digest(MOBILE) == rt.suppressions.digest(MOBILE)


def test_a_deferred_record_outlives_its_wait(rt: Runtime) -> None:
    """Deferred for a day: the record's TTL covers the day plus the usual retention."""
    seconds, _ = rt.redis.time()
    claim(rt, "later", not_before=seconds + 86400.0)
    retention_ms = rt.settings.key_retention * 1000
    assert rt.redis.pttl(rt.keys.send("later")) > retention_ms + 86_000_000
    claim(rt, "queued")
    assert rt.deferrals.defer("queued", seconds + 86400.0)
    assert rt.redis.pttl(rt.keys.send("queued")) > retention_ms + 86_000_000
