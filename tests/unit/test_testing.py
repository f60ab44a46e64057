"""tasks.testing.captured_sends: a host app's tests see what would be sent, with no servers."""

from __future__ import annotations

import pytest

from tasks import delivery_status, send_prepared_sms
from tasks.core.errors import IdempotencyConflict, InvalidSendRequest
from tasks.testing import captured_sends
from tests.support.broker import Broker
from tests.support.environments import OFFLINE_ENV, child_env
from tests.support.processes import run_python


def test_a_send_is_captured_as_engage_would_get_it(broker: Broker) -> None:
    """Message, normalised mobile, parameters, key, lane and callback; nothing published."""
    with captured_sends() as outbox:
        handle = send_prepared_sms(
            23541,
            mobile="+48 505 606 707",
            parameters={"firstName": "Ann"},
            idempotency_key="order-7-shipped",
            priority="urgent",
            on_done="shop.tasks.sms_finished",
        )
    (sms,) = outbox.sends
    assert (sms.message_id, sms.mobile, sms.parameters) == (
        23541,
        "48505606707",
        {"firstName": "Ann"},
    )
    assert (sms.key, sms.priority, sms.on_done) == (
        "order-7-shipped",
        "urgent",
        "shop.tasks.sms_finished",
    )
    assert (handle.key, handle.task_id, handle.created) == ("order-7-shipped", sms.task_id, True)
    assert broker.published == []


def test_invalid_input_raises_as_for_real_and_captures_nothing() -> None:
    """Validation is the real one: a bad number raises InvalidSendRequest naming the field."""
    with captured_sends() as outbox, pytest.raises(InvalidSendRequest) as raised:
        send_prepared_sms(23541, mobile="12ab", idempotency_key="k")
    assert raised.value.field == "mobile"
    assert len(outbox) == 0


def test_the_same_key_sends_once_and_another_request_under_it_conflicts() -> None:
    """Same key and request: created=False, one capture; same key, other request: conflict."""
    with captured_sends() as outbox:
        first = send_prepared_sms(23541, email="ann@example.com", idempotency_key="k")
        again = send_prepared_sms(23541, email="ann@example.com", idempotency_key="k")
        with pytest.raises(IdempotencyConflict):
            send_prepared_sms(23541, email="bob@example.com", idempotency_key="k")
    assert (again.created, again.task_id) == (False, first.task_id)
    assert [s.email for s in outbox] == ["ann@example.com"]


def test_delivery_status_answers_queued_for_a_captured_key() -> None:
    """Inside the block delivery_status reads the outbox: queued, masked, or unknown."""
    with captured_sends():
        send_prepared_sms(23541, mobile="+48505606707", idempotency_key="k")
        status = delivery_status("k")
        assert delivery_status("other")["state"] == "unknown"
    assert (status["state"], status["recipient"]) == ("queued", "MOBILE:48*******07")


def test_final_status_is_what_a_callback_gets() -> None:
    """final_status(key, state) gives the app's on_done task the status it would receive."""
    with captured_sends() as outbox:
        send_prepared_sms(23541, mobile="+48505606707", idempotency_key="k", on_done="a.b")
    status = outbox.final_status("k", "dead_lettered", reason="unknown_recipient")
    assert (status["key"], status["state"], status["reason"]) == (
        "k",
        "dead_lettered",
        "unknown_recipient",
    )
    assert status["on_done"] == "a.b"
    with pytest.raises(KeyError):
        outbox.final_status("missing")


def test_default_region_reads_national_numbers() -> None:
    """With default_region, a national number is read as the app's ENGAGE_DEFAULT_REGION would."""
    with captured_sends(default_region="PL") as outbox:
        send_prepared_sms(23541, mobile="505 606 707", idempotency_key="k")
    assert outbox.sends[0].mobile == "48505606707"


@pytest.mark.process
def test_host_tests_need_no_redis_broker_or_worker() -> None:
    """A fresh host process whose broker and Redis are nowhere captures the send all the same."""
    code = (
        "from tasks import send_prepared_sms\n"
        "from tasks.testing import captured_sends\n"
        "with captured_sends() as outbox:\n"
        "    send_prepared_sms(23541, mobile='+48505606707', idempotency_key='k')\n"
        "print(outbox.sends[0].mobile, outbox.sends[0].key)\n"
    )
    result = run_python(code, env=child_env(OFFLINE_ENV))
    assert result.stdout.strip() == "48505606707 k"


def test_the_sending_policy_s_arguments_are_checked_as_in_production() -> None:
    """A bad deadline or create_contact fails in the double as it would for real."""
    with captured_sends() as outbox:
        send_prepared_sms(23541, mobile="+48505606707", expires_in=30, create_contact=True)
        with pytest.raises(InvalidSendRequest, match="expires_in"):
            send_prepared_sms(23541, mobile="+48505606707", expires_in=-1)
        with pytest.raises(InvalidSendRequest, match="create_contact"):
            send_prepared_sms(23541, mobile="+48505606707", create_contact="yes")  # type: ignore[arg-type]
    assert len(outbox.sends) == 1
