"""Priority lanes at enqueue: validated, published to the lane's queue, kept for every republish."""

from __future__ import annotations

import json
import tomllib
from datetime import UTC, datetime

import pytest

import tasks.api
from tasks.api import delivery_status, send_prepared_sms
from tasks.cli import ExitCode, main
from tasks.core.errors import ConfigurationError, InvalidSendRequest
from tasks.core.schedule_file import parse_schedules
from tasks.core.send_options import Priority, lane_of_queue
from tasks.delivery.runtime import Runtime
from tasks.state.enums import Reason
from tasks.state.keys import RedisKeys
from tasks.worker.housekeeping import sweep
from tasks.worker.schedules import dispatch
from tests.support.broker import Broker

QUEUES = {"urgent": "engage.urgent", "normal": "engage.normal", "bulk": "engage.bulk"}


@pytest.mark.parametrize("priority", ["urgent", "normal", "bulk"])
def test_both_steps_go_to_the_lanes_queue(runtime: Runtime, broker: Broker, priority: str) -> None:
    """resolve_contact is published to the lane's queue, and send_single is chained to it too."""
    send_prepared_sms(23541, mobile="+48505606707", idempotency_key="k1", priority=priority)
    (message,) = broker.messages
    (then,) = message.chain
    assert (message.queue, then["options"]["queue"]) == (QUEUES[priority], QUEUES[priority])


def test_a_send_without_a_priority_is_normal(runtime: Runtime, broker: Broker) -> None:
    """The default lane is normal, and the status says so."""
    send_prepared_sms(23541, mobile="+48505606707", idempotency_key="k1")
    (message,) = broker.messages
    assert message.queue == "engage.normal"
    assert delivery_status("k1")["priority"] == "normal"


@pytest.mark.parametrize("priority", ["high", "", "URGENT!", 1, None])
def test_invalid_priority_names_the_field_and_enqueues_nothing(
    runtime: Runtime, broker: Broker, priority: object
) -> None:
    """Anything but urgent, normal or bulk raises InvalidSendRequest('priority') before a write."""
    with pytest.raises(InvalidSendRequest) as caught:
        send_prepared_sms(23541, mobile="+48505606707", idempotency_key="k1", priority=priority)  # type: ignore[arg-type]  # the wrong type is the test
    assert caught.value.field == "priority"
    assert broker.messages == []
    assert delivery_status("k1")["state"] == "unknown"


def test_priority_is_read_case_insensitively(runtime: Runtime, broker: Broker) -> None:
    """' Urgent ' is the urgent lane (a value from a form or a config file)."""
    send_prepared_sms(23541, mobile="+48505606707", idempotency_key="k1", priority=" Urgent ")
    assert broker.messages[0].queue == "engage.urgent"


def test_repeated_enqueue_in_another_lane_keeps_the_first(runtime: Runtime, broker: Broker) -> None:
    """The lane is not part of the request: the same key again in bulk is a duplicate of urgent."""
    send_prepared_sms(23541, mobile="+48505606707", idempotency_key="k1", priority="urgent")
    again = send_prepared_sms(23541, mobile="+48505606707", idempotency_key="k1", priority="bulk")
    assert not again.created
    assert [m.queue for m in broker.messages] == ["engage.urgent"]
    assert delivery_status("k1")["priority"] == "urgent"


def test_replay_goes_back_to_the_lane_it_was_enqueued_in(runtime: Runtime, broker: Broker) -> None:
    """A replayed bulk send is published to the bulk queue again."""
    send_prepared_sms(23541, mobile="+48505606707", idempotency_key="k1", priority="bulk")
    runtime.dead_letters.add(
        "k1", reason=Reason.RETRIES_EXHAUSTED, detail="d", error=None, task_ids=["a", "b"]
    )
    assert tasks.api.replay_dead_letter("k1") == "requeued"
    assert [m.queue for m in broker.messages] == ["engage.bulk", "engage.bulk"]


def test_sweep_republishes_a_lost_send_in_its_lane(runtime: Runtime, broker: Broker) -> None:
    """A queued urgent send whose message was lost is published again to the urgent queue."""
    send_prepared_sms(23541, mobile="+48505606707", idempotency_key="k1", priority="urgent")
    broker.purge()  # the message is lost
    keys = RedisKeys(runtime.settings.key_prefix)
    long_ago = repr(float(runtime.ledger.record("k1")["updated_at"]) - 3600)
    runtime.redis.hset(keys.send("k1"), "updated_at", long_ago)
    runtime.redis.zadd(keys.inflight, {"k1": float(long_ago)})
    assert sweep(runtime, now=float(long_ago) + 3600).republished == ["k1"]
    assert [m.queue for m in broker.messages] == ["engage.urgent"]


def test_lane_of_a_delivered_task_is_its_queue() -> None:
    """A task knows its lane from the queue it came from; any other queue counts as normal."""
    assert [lane_of_queue(q) for q in ("engage.urgent", "engage.bulk", "celery", None)] == [
        Priority.URGENT,
        Priority.BULK,
        Priority.NORMAL,
        Priority.NORMAL,
    ]


def test_cli_send_priority_picks_the_lane(
    runtime: Runtime, broker: Broker, capsys: pytest.CaptureFixture[str]
) -> None:
    """engage-sms send --priority urgent publishes to the urgent queue."""
    argv = ["send", "--message-id", "23541", "--mobile", "+48505606707", "--priority", "urgent"]
    assert main(argv) == ExitCode.OK
    assert json.loads(capsys.readouterr().out)["state"] == "queued"
    assert broker.messages[0].queue == "engage.urgent"


def test_cli_refuses_an_unknown_priority(capsys: pytest.CaptureFixture[str]) -> None:
    """--priority high is a usage error naming the choices."""
    with pytest.raises(SystemExit) as caught:
        main(["send", "--message-id", "1", "--mobile", "+48505606707", "--priority", "high"])
    assert caught.value.code == ExitCode.USAGE
    assert "urgent" in capsys.readouterr().err


SCHEDULE = """
[[schedule]]
name = "reminder"
every = 3600
message_id = 23541
recipients = [{ mobile = "+48505606707" }]
"""


def test_a_schedule_without_priority_sends_in_the_bulk_lane() -> None:
    """Scheduled runs are batches: bulk unless the schedule names a lane."""
    (schedule,) = parse_schedules(tomllib.loads(SCHEDULE))
    (urgent,) = parse_schedules(tomllib.loads(SCHEDULE + 'priority = "urgent"\n'))
    assert (schedule.priority, urgent.priority) == (Priority.BULK, Priority.URGENT)


def test_a_schedule_with_an_unknown_priority_names_the_field() -> None:
    """priority = "high" stops the file at load, naming the schedule and the field."""
    with pytest.raises(ConfigurationError, match="schedule 'reminder': priority: must be one of"):
        parse_schedules(tomllib.loads(SCHEDULE + 'priority = "high"\n'))


def test_a_schedule_run_is_published_in_the_schedules_lane(
    runtime: Runtime, broker: Broker
) -> None:
    """Dispatching a run enqueues each recipient in the lane the schedule names."""
    (schedule,) = parse_schedules(tomllib.loads(SCHEDULE + 'priority = "normal"\n'))
    dispatch(runtime, schedule, datetime(2024, 5, 1, 9, 0, 1, tzinfo=UTC))
    assert [m.queue for m in broker.messages] == ["engage.normal"]
