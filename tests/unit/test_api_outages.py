"""Redis and broker outages at the public API: one ServiceUnavailable, nothing half-written."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import fakeredis
import pytest
import redis

from tasks.api import delivery_status, replay_dead_letter, send_prepared_sms
from tasks.core.errors import ServiceUnavailable
from tasks.core.outages import unavailable_as
from tasks.core.request import build_send_request
from tasks.delivery.runtime import Runtime
from tasks.state.enums import Reason
from tasks.worker.app import app
from tests.support.broker import REFUSE_AT_ONCE, Broker, using_broker
from tests.support.environments import make_settings
from tests.support.runtime import fake_runtime, installed

#: Nothing listens on port 1: connecting is refused at once. The password must never show.
DEAD_URL = "redis://:s3cret@127.0.0.1:1/0"
SHOWN_URL = "redis://:***@127.0.0.1:1/0"


class LostAnswer(fakeredis.FakeRedis):
    """A Redis whose first script answer is lost: the script ran, its reply never came.

    ``retried``: redis-py sent the command again, as its default retry does; else the caller
    sees the timeout.
    """

    def __init__(self, *, retried: bool) -> None:
        super().__init__()
        self.retried = retried
        self.answers_to_lose = 1

    def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> Any:
        """Run the script; lose the first answer."""
        answer = super().evalsha(sha, numkeys, *keys_and_args)
        if self.answers_to_lose == 0:
            return answer
        self.answers_to_lose -= 1
        if self.retried:
            return super().evalsha(sha, numkeys, *keys_and_args)
        raise redis.TimeoutError("Timeout reading from socket")


@pytest.fixture
def redis_down() -> Iterator[Runtime]:
    """This process's runtime on a Redis (REDIS_URL, with a password) that refuses connections."""
    with installed(Runtime.build(make_settings(REDIS_URL=DEAD_URL))) as rt:
        yield rt


@pytest.fixture
def broker_down(broker: Broker) -> Iterator[Runtime]:
    """Redis answers (fakeredis); the broker, a password in its URL, refuses connections."""
    settings = make_settings(CELERY_BROKER_URL=DEAD_URL)
    with (
        installed(fake_runtime(settings)) as rt,
        using_broker(app, DEAD_URL, **REFUSE_AT_ONCE),
    ):
        yield rt


def test_status_with_redis_down_names_redis_and_masks_its_password(redis_down: Runtime) -> None:
    """delivery_status raises ServiceUnavailable naming Redis, its URL masked, and the reason."""
    with pytest.raises(ServiceUnavailable) as caught:
        delivery_status("order-1")
    err = caught.value
    assert (err.service, err.url, err.reason) == ("redis", SHOWN_URL, "Connection refused")
    assert str(err) == f"Redis unavailable at {SHOWN_URL}: Connection refused"


def test_send_with_redis_down_publishes_nothing(redis_down: Runtime, broker: Broker) -> None:
    """send_prepared_sms raises ServiceUnavailable and nothing reaches the broker."""
    with pytest.raises(ServiceUnavailable, match=r"^Redis unavailable"):
        send_prepared_sms(23541, mobile="+48505606707", idempotency_key="order-1")
    assert broker.published == []


def test_replay_with_redis_down_raises_service_unavailable(
    redis_down: Runtime, broker: Broker
) -> None:
    """replay_dead_letter raises ServiceUnavailable naming Redis and publishes nothing."""
    with pytest.raises(ServiceUnavailable) as caught:
        replay_dead_letter("order-1")
    assert caught.value.service == "redis"
    assert broker.published == []


def test_send_with_the_broker_down_names_the_broker_and_leaves_no_claim(
    broker_down: Runtime,
) -> None:
    """A refused publish raises ServiceUnavailable for the broker; the key stays free."""
    with pytest.raises(ServiceUnavailable) as caught:
        send_prepared_sms(23541, mobile="+48505606707", idempotency_key="order-1")
    err = caught.value
    assert (err.service, err.url, err.reason) == ("broker", SHOWN_URL, "Connection refused")
    assert broker_down.ledger.state("order-1") is None


def test_replay_with_the_broker_down_keeps_the_dead_letter(broker_down: Runtime) -> None:
    """A replay that cannot be published raises ServiceUnavailable; the entry stays."""
    request = build_send_request(23541, mobile="+48505606707")
    broker_down.ledger.claim("order-1", request, ["t0", "t1"])
    broker_down.dead_letters.add(
        "order-1", reason=Reason.UNKNOWN_RECIPIENT, detail="d", error=None, task_ids=["t0", "t1"]
    )
    with pytest.raises(ServiceUnavailable, match=r"^broker unavailable"):
        replay_dead_letter("order-1")
    assert broker_down.dead_letters.get("order-1") is not None
    assert delivery_status("order-1")["state"] == "dead_lettered"


def test_a_claim_whose_answer_was_lost_is_released(broker: Broker) -> None:
    """Redis timing out after the claim ran leaves no claim behind, and publishes nothing."""
    with installed(fake_runtime(redis_client=LostAnswer(retried=False))) as rt:
        with pytest.raises(ServiceUnavailable, match="Timeout reading from socket"):
            send_prepared_sms(23541, mobile="+48505606707", idempotency_key="order-1")
        assert rt.ledger.state("order-1") is None
    assert broker.published == []


def test_a_claim_retried_by_redis_py_is_still_published(broker: Broker) -> None:
    """A claim sent twice (its first answer lost) is this call's own: created, published once."""
    with installed(fake_runtime(redis_client=LostAnswer(retried=True))):
        handle = send_prepared_sms(23541, mobile="+48505606707", idempotency_key="order-1")
    assert handle.created
    assert [key for _, key, _ in broker.published] == ["order-1"]


def test_a_redis_error_that_is_not_an_outage_passes_unchanged() -> None:
    """A script or type error is a bug, not an outage: it is not turned into ServiceUnavailable."""
    with pytest.raises(redis.ResponseError), unavailable_as("redis", DEAD_URL):
        raise redis.ResponseError("WRONGTYPE Operation against a key holding the wrong value")
