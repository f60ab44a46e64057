"""Signed callbacks: the final status POSTed once delivered, retried with backoff, signed."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient

from tasks.delivery.runtime import Runtime
from tasks.http.callbacks import (
    MAX_FAILURES,
    PER_DESTINATION,
    POST_WORKERS,
    SIGNATURE_HEADER,
    CallbackDispatcher,
    Post,
    retry_delay,
    sign,
    verify,
)
from tasks.http.services import current_services
from tasks.http.tokens import NewToken
from tests.support.broker import Broker
from tests.support.http_client import api_client, bearer, new_token

BODY = {
    "message_id": 23541,
    "mobile": "+48 505 606 707",
    "parameters": {"code": "918273"},
    "callback_url": "http://127.0.0.1:9/hook",
}


class Receiver:
    """Stands in for the caller's web server: answers with the next status code given."""

    def __init__(self, *codes: int) -> None:
        self.codes = list(codes)
        self.calls: list[tuple[str, bytes, dict[str, str]]] = []

    def __call__(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        self.calls.append((url, body, headers))
        return self.codes.pop(0) if self.codes else 200


@pytest.fixture
def sent(runtime: Runtime, broker: Broker) -> Iterator[tuple[NewToken, TestClient]]:
    """A send with a callback URL, enqueued over HTTP."""
    with api_client() as client:
        token = new_token("shop", "send")
        answer = client.post("/v1/sends", json=BODY, headers=bearer(token, "order-1"))
        assert answer.status_code == 202
        yield token, client


def dispatcher(receiver: Post) -> CallbackDispatcher:
    """A dispatcher on this process's services posting to ``receiver``."""
    s = current_services()
    return CallbackDispatcher(
        s.runtime.redis,
        keys=s.keys,
        ledger=s.runtime.ledger,
        owners=s.owners,
        tokens=s.tokens,
        post=receiver,
    )


def test_nothing_is_posted_before_the_send_is_final(
    sent: tuple[NewToken, TestClient], runtime: Runtime
) -> None:
    """A queued send is looked at again later, not reported."""
    receiver = Receiver()
    assert dispatcher(receiver).run_once() == 0
    assert receiver.calls == []


def test_the_final_status_is_posted_once_signed_with_the_token_secret(
    sent: tuple[NewToken, TestClient], runtime: Runtime
) -> None:
    """Sent: one POST of the masked status, its signature verifies under the callback secret."""
    token, _ = sent
    runtime.ledger.mark_sent("order-1")
    receiver = Receiver()
    assert dispatcher(receiver).run_once() == 1
    ((url, body, headers),) = receiver.calls
    assert url == "http://127.0.0.1:9/hook"
    assert verify(token.token.callback_secret, body, headers[SIGNATURE_HEADER])
    assert not verify("another secret", body, headers[SIGNATURE_HEADER])
    status = json.loads(body)
    assert (status["key"], status["state"]) == ("order-1", "sent")
    assert b"48505606707" not in body
    assert b"918273" not in body
    assert dispatcher(receiver).run_once(now=10**10) == 0  # delivered: never again
    assert len(receiver.calls) == 1


def test_the_signature_covers_its_time_so_a_replay_later_is_refused() -> None:
    """Engage-Signature: t=..,v1=..; the body and the time are signed: a changed body, a changed
    t or a callback replayed past the tolerance does not verify."""
    body = b'{"key":"order-1","state":"sent"}'
    header = sign("secret", body, timestamp=1_800_000_000)
    t, v1 = header.split(",")
    assert t == "t=1800000000"
    assert v1.startswith("v1=")
    assert verify("secret", body, header, now=1_800_000_100)
    assert not verify("secret", body, header, now=1_800_000_000 + 301)
    assert not verify("secret", body + b" ", header, now=1_800_000_000)
    assert not verify("secret", body, f"t=1800000200,{v1}", now=1_800_000_200)
    assert not verify("secret", body, v1, now=1_800_000_000)


class Hanging:
    """Two receivers: one at ``slow.example`` that hangs until released, any other answers."""

    def __init__(self, slow_expected: int) -> None:
        self.release = threading.Event()
        self.fast_called = threading.Event()
        self.slow_running = threading.Event()
        self.slow_expected = slow_expected
        self.slow_calls = 0
        self._lock = threading.Lock()

    def __call__(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        if "slow.example" in url:
            with self._lock:
                self.slow_calls += 1
                if self.slow_calls >= self.slow_expected:
                    self.slow_running.set()
            self.release.wait(30)
            return 0  # as a receiver that never answered: the client's timeout ended it
        self.fast_called.set()
        return 204


def test_a_receiver_that_hangs_does_not_hold_up_another_s_callbacks(
    runtime: Runtime, broker: Broker
) -> None:
    """More callbacks due for a hanging receiver than the pool has threads, then one for another:
    the hanging one gets exactly PER_DESTINATION POSTs at once, the other is delivered."""
    receivers = Hanging(slow_expected=PER_DESTINATION)
    urls = ["https://slow.example/hook"] * (POST_WORKERS + 2) + ["https://fast.example/h"]
    with api_client() as client:
        token = new_token("shop", "send")
        for n, url in enumerate(urls):
            body = {**BODY, "callback_url": url}
            assert client.post("/v1/sends", json=body, headers=bearer(token, f"k{n}")).is_success
            runtime.ledger.mark_sent(f"k{n}")
    d = dispatcher(receivers)
    try:
        d.run_once(now=time.time() + 1, wait=False)
        assert receivers.slow_running.wait(20), "the hanging receiver got no POSTs"
        assert receivers.fast_called.wait(20), "the fast receiver waited behind the hanging one"
        assert receivers.slow_calls == PER_DESTINATION
    finally:
        receivers.release.set()
        d.close()


def test_a_callback_is_retried_for_about_a_day() -> None:
    """The waits between MAX_FAILURES tries add up to about a day, jitter included."""
    waits = sum(retry_delay(fails) for fails in range(1, MAX_FAILURES))
    assert waits >= 22 * 3600
    assert waits * 1.2 <= 30 * 3600


def test_a_failed_post_is_retried_later_not_at_once(
    sent: tuple[NewToken, TestClient], runtime: Runtime
) -> None:
    """A 500 and a connection failure (0) leave it due later; then it is delivered."""
    runtime.ledger.mark_sent("order-1")
    receiver = Receiver(500, 0)
    d = dispatcher(receiver)
    t0 = time.time() + 1
    assert d.run_once(now=t0) == 0
    assert d.run_once(now=t0 + 0.5) == 0  # backing off: not due yet
    assert len(receiver.calls) == 1
    assert d.run_once(now=t0 + 2) == 0  # second failure
    assert d.run_once(now=t0 + 100) == 1
    assert len(receiver.calls) == 3


def test_a_dead_letter_is_reported_and_a_replay_reported_again(
    sent: tuple[NewToken, TestClient], runtime: Runtime
) -> None:
    """dead_lettered goes out; after a replay, the send's next final state goes out too."""
    from tasks.state.enums import Reason  # noqa: PLC0415  (the reasons the store files)

    runtime.dead_letters.add(
        "order-1", reason=Reason.REJECTED, detail="no", error=None, task_ids=["a", "b"]
    )
    receiver = Receiver()
    d = dispatcher(receiver)
    t0 = time.time() + 1
    assert d.run_once(now=t0) == 1
    runtime.dead_letters.replay("order-1", ["c", "d"])
    runtime.ledger.mark_sent("order-1")
    assert d.run_once(now=t0 + 100) == 1
    states = [json.loads(body)["state"] for _, body, _ in receiver.calls]
    assert states == ["dead_lettered", "sent"]


def test_a_policy_end_is_posted_once_and_never_again(
    sent: tuple[NewToken, TestClient], runtime: Runtime
) -> None:
    """expired is final for good (no replay follows): one POST, then the key is forgotten."""
    from tasks.state.enums import SendState  # noqa: PLC0415  (beside its one use)

    assert runtime.gate.finish("order-1", SendState.EXPIRED, "deadline")
    receiver = Receiver()
    d = dispatcher(receiver)
    assert d.run_once(now=time.time() + 1) == 1
    assert json.loads(receiver.calls[0][1])["state"] == "expired"
    assert d.run_once(now=10**10) == 0
    assert len(receiver.calls) == 1


def test_the_send_s_record_lives_as_long_as_the_ledger_s_dead_letter(
    sent: tuple[NewToken, TestClient], runtime: Runtime
) -> None:
    """A dead letter is kept (and may be replayed) for ENGAGE_DLQ_MAX_AGE_DAYS, far past the
    key retention the HTTP record of the send was written with: once the dispatcher has looked
    at it, that record and its callback progress live as long as the ledger's, so a replay days
    later is still reported to the callback URL (and the sender may still read the status)."""
    from tasks.state.enums import Reason  # noqa: PLC0415  (the reasons the store files)

    runtime.dead_letters.add(
        "order-1", reason=Reason.REJECTED, detail="no", error=None, task_ids=["a", "b"]
    )
    s = current_services()
    ledger_ttl = runtime.redis.pttl(runtime.keys.send("order-1"))
    assert ledger_ttl > s.runtime.settings.key_retention * 1000 * 2
    assert dispatcher(Receiver()).run_once(now=time.time() + 1) == 1
    for name in (s.keys.send("order-1"), s.keys.callback("order-1")):
        assert runtime.redis.pttl(name) >= ledger_ttl - 60_000


def test_redis_away_is_logged_once_and_not_polled_four_times_a_second(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With Redis down the dispatcher thread backs off and says so once, not a warning every
    quarter of a second for as long as the outage lasts; it says when Redis is back."""
    import redis  # noqa: PLC0415

    from tasks.http import callbacks  # noqa: PLC0415

    waits: list[float] = []

    class Pause(threading.Event):
        """The thread's stop flag, whose wait between rounds is recorded, not slept."""

        def wait(self, timeout: float | None = None) -> bool:
            waits.append(timeout or 0.0)
            return self.is_set()

    class Down:
        rounds = 0
        done = threading.Event()

        def run_once(self, *, wait: bool = True) -> int:
            self.rounds += 1
            if self.rounds >= 10:
                self.done.set()
            if self.rounds <= 7:
                raise redis.ConnectionError("Connection refused")
            return 0

        def close(self) -> None:
            return

    monkeypatch.setattr(
        callbacks, "threading", SimpleNamespace(Event=Pause, Thread=threading.Thread)
    )
    down = Down()
    thread = callbacks.DispatcherThread(down, interval=0.25)  # type: ignore[arg-type]
    with caplog.at_level("INFO", logger="engage.http.callbacks"):
        thread.start()
        assert down.done.wait(timeout=30)
        thread.stop()
    # Seven rounds without Redis: 0.5, 1, 2, 4 s, then REDIS_AWAY_WAIT; back to 0.25 s after.
    assert waits[:9] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0, 0.25, 0.25]
    messages = [record.getMessage() for record in caplog.records]
    assert len([m for m in messages if "did not answer" in m]) == 1
    assert len([m for m in messages if "answers again" in m]) == 1
