"""Periodic sends: the schedule file, run slots, beat entries, and a dispatch that never doubles."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import fakeredis
import pytest
from celery.app.task import Context
from celery.schedules import crontab

from tasks.core.errors import ConfigurationError
from tasks.core.schedule_file import Schedule, load_schedules, parse_schedules
from tasks.delivery.runtime import Runtime
from tasks.state.hashing import KeyHasher
from tasks.state.keys import RedisKeys
from tasks.worker.beat_schedule import (
    AlignedInterval,
    cron_slot,
    housekeeping_entries,
    run_key,
    schedule_entries,
    slot_of,
)
from tasks.worker.schedules import TICK_HEADER, dispatch, dispatch_schedule, tick_of
from tests.support.broker import Broker
from tests.support.environments import OFFLINE_ENV, child_env
from tests.support.processes import celery_command, run_python
from tests.support.runtime import fake_runtime, installed

DAILY = """
[[schedule]]
name = "daily-reminder"
cron = "0 9 * * *"
message_id = 23541
parameters = { firstName = "Ann" }
recipients = [{ mobile = "+48 505 606 707" }, { email = "a@example.com" }, { recipient_id = 33457 }]
"""
HOURLY = """
[[schedule]]
name = "hourly"
every = 3600
message_id = 23541
recipients = [{ external_id = "crm-1" }]
"""
GOOD = DAILY + HOURLY


def at(text: str) -> datetime:
    """A UTC moment from ``YYYY-mm-dd HH:MM:SS``."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


def schedule_from(toml: str) -> Schedule:
    """The one schedule in ``toml``."""
    (schedule,) = parse_schedules(tomllib.loads(toml))
    return schedule


def config_error(toml: str) -> str:
    """The ConfigurationError text for ``toml``; fails the test if it loads."""
    with pytest.raises(ConfigurationError) as caught:
        parse_schedules(tomllib.loads(toml), source="s.toml")
    assert caught.value.setting == "ENGAGE_SCHEDULE_FILE"
    return str(caught.value)


def one(body: str, name: str = "n") -> str:
    """A one-schedule file with ``body`` as its fields."""
    return f'[[schedule]]\nname = "{name}"\n{body}\n'


#: A configuration for fresh interpreters (nothing in them connects anywhere).
VALID_BODY = 'cron = "0 9 * * *"\nmessage_id = 1\nrecipients = [{ mobile = "+48505606707" }]'


@pytest.fixture
def rt() -> Iterator[Runtime]:
    """A fakeredis runtime installed for this process (no Engage call is made)."""
    with installed(fake_runtime()) as runtime:
        yield runtime


# -- the file -------------------------------------------------------------------------------


def test_good_file_loads_every_schedule_and_recipient(tmp_path: Path) -> None:
    """Both schedules load, recipients validated and normalised like API calls."""
    path = tmp_path / "schedules.toml"
    path.write_text(GOOD)
    daily, hourly = load_schedules(str(path))
    assert (daily.name, daily.cron, daily.every) == ("daily-reminder", "0 9 * * *", None)
    assert [(r.identifier.type, r.identifier.value) for r in daily.requests] == [
        ("MOBILE", "48505606707"),
        ("EMAIL", "a@example.com"),
        ("ID", "33457"),
    ]
    assert daily.requests[0].parameters == (("firstName", "Ann"),)
    assert (hourly.every, hourly.cron_spec) == (3600, None)


def test_no_file_means_no_schedules() -> None:
    """ENGAGE_SCHEDULE_FILE unset: nothing is scheduled."""
    assert load_schedules(None) == ()


def test_missing_file_is_a_configuration_error(tmp_path: Path) -> None:
    """A path that does not exist names the variable and the path."""
    with pytest.raises(
        ConfigurationError, match=r"ENGAGE_SCHEDULE_FILE: .*nope\.toml: cannot read"
    ):
        load_schedules(str(tmp_path / "nope.toml"))


def test_invalid_toml_is_a_configuration_error(tmp_path: Path) -> None:
    """A TOML syntax error names the variable and says it is not TOML."""
    path = tmp_path / "bad.toml"
    path.write_text("[[schedule]\nname = ")
    with pytest.raises(ConfigurationError, match="not valid TOML"):
        load_schedules(str(path))


def test_bad_mobile_names_schedule_and_recipient_field() -> None:
    """An invalid recipient is reported as schedule 'name': recipients[i].field."""
    body = (
        'every = 60\nmessage_id = 1\nrecipients = [{ mobile = "+48505606707" }, { mobile = "12" }]'
    )
    assert "schedule 'n': recipients[1].mobile: is not a phone number" in config_error(one(body))


def test_missing_name_names_the_schedule_by_position() -> None:
    """Without a name, the schedule is named by its index."""
    assert "schedule[0]: name:" in config_error(f"[[schedule]]\n{VALID_BODY}\n")


def test_cron_and_every_together_are_refused() -> None:
    """A schedule has exactly one of cron and every."""
    text = config_error(one(VALID_BODY + "\nevery = 3600"))
    assert "schedule 'n': cron: give exactly one of cron and every" in text


def test_invalid_cron_is_named() -> None:
    """A cron expression Celery cannot parse is reported with the field."""
    body = VALID_BODY.replace('"0 9 * * *"', '"0 25 * * *"')
    assert "schedule 'n': cron: '0 25 * * *'" in config_error(one(body))


def test_interval_under_a_minute_is_refused() -> None:
    """every must be at least 60 seconds."""
    body = VALID_BODY.replace('cron = "0 9 * * *"', "every = 30")
    assert "schedule 'n': every: must be a whole number of seconds >= 60" in config_error(one(body))


def test_unknown_field_is_named() -> None:
    """A misspelt field is an error, not silently ignored."""
    assert "schedule 'n': recipient: unknown field" in config_error(
        one(VALID_BODY + "\nrecipient = 1")
    )


def test_unknown_recipient_field_is_named() -> None:
    """A recipient table with an unknown identifier names it."""
    body = VALID_BODY.replace("mobile", "phone")
    assert "schedule 'n': recipients[0].phone: unknown field" in config_error(one(body))


def test_bad_message_id_is_named() -> None:
    """message_id is validated like an API call's."""
    body = VALID_BODY.replace("message_id = 1", "message_id = -3")
    assert "schedule 'n': message_id: must be a positive" in config_error(one(body))


def test_duplicate_recipient_is_refused() -> None:
    """The same contact twice in one schedule (however written) is an error."""
    body = VALID_BODY.replace(
        '[{ mobile = "+48505606707" }]',
        '[{ mobile = "+48505606707" }, { mobile = "0048 505 606 707" }]',
    )
    assert "recipients[1]: the same recipient as recipients[0]" in config_error(one(body))


def test_duplicate_schedule_name_is_refused() -> None:
    """Two schedules cannot share a name (it is part of the idempotency key)."""
    assert "name: used by an earlier schedule" in config_error(one(VALID_BODY) + one(VALID_BODY))


# -- slots ----------------------------------------------------------------------------------


def test_cron_slot_is_the_latest_due_time_not_now() -> None:
    """A daily 09:00 run seen at 10:30 belongs to 09:00 that day."""
    schedule = schedule_from(one(VALID_BODY))
    assert slot_of(schedule, at("2024-05-01 10:30:17")) == at("2024-05-01 09:00:00")


def test_cron_slot_before_the_time_is_the_previous_day() -> None:
    """Seen at 08:58, the latest daily 09:00 run is yesterday's."""
    schedule = schedule_from(one(VALID_BODY))
    assert slot_of(schedule, at("2024-05-01 08:58:00")) == at("2024-04-30 09:00:00")


def test_tick_a_moment_early_belongs_to_the_run_it_is_for() -> None:
    """A worker clock a few seconds behind beat's still finds the 09:00 run."""
    schedule = schedule_from(one(VALID_BODY))
    assert slot_of(schedule, at("2024-05-01 08:59:57")) == at("2024-05-01 09:00:00")


def test_cron_weekday_slot() -> None:
    """Mondays 08:30, seen on a Wednesday, is that week's Monday."""
    spec = crontab(minute="30", hour="8", day_of_week="1")
    assert cron_slot(spec, at("2024-05-01 12:00:00")) == at("2024-04-29 08:30:00")


@pytest.mark.parametrize(
    ("cron", "moment"),
    [
        ("*/15 * * * *", "2024-05-01 10:07:00"),
        ("0 9 * * 1-5", "2024-05-04 12:00:00"),
        ("30 6 1,15 * *", "2024-05-10 00:00:00"),
        ("0 0 29 2 *", "2025-06-01 00:00:00"),
    ],
)
def test_cron_slot_follows_celery_crontab(cron: str, moment: str) -> None:
    """Celery's crontab, asked for the run after the previous slot, fires at our slot."""
    minute, hour, dom, month, dow = cron.split()
    spec = crontab(minute, hour, dow, dom, month)
    slot = cron_slot(spec, at(moment))
    previous = cron_slot(spec, slot - timedelta(minutes=1))
    timed = crontab(minute, hour, dow, dom, month, nowfun=lambda: previous)
    assert previous + timed.remaining_estimate(previous) == slot


def test_interval_slot_is_floored_to_multiples_since_the_epoch() -> None:
    """every = 3600 seen at 10:17 belongs to 10:00."""
    schedule = schedule_from(
        one("every = 3600\nmessage_id = 1\nrecipients = [{ recipient_id = 1 }]")
    )
    assert slot_of(schedule, at("2024-05-01 10:17:42")) == at("2024-05-01 10:00:00")


def test_aligned_interval_is_due_once_per_boundary() -> None:
    """Due after a boundary was crossed since the last run, not again within the same slot."""
    now = at("2024-05-01 10:00:03")
    every = AlignedInterval(timedelta(seconds=3600), nowfun=lambda: now)
    due, next_check = every.is_due(at("2024-05-01 09:00:01"))
    assert (due, next_check) == (True, 3597.0)
    assert every.is_due(at("2024-05-01 10:00:01"))[0] is False


# -- beat entries ---------------------------------------------------------------------------


def test_schedule_entries_carry_the_schedule_and_show_only_its_name(tmp_path: Path) -> None:
    """Each schedule is one beat entry: dispatch(name, table), shown as [name] in Flower."""
    path = tmp_path / "s.toml"
    path.write_text(GOOD)
    entries = schedule_entries(load_schedules(str(path)))
    daily, hourly = entries["engage-schedule:daily-reminder"], entries["engage-schedule:hourly"]
    assert daily["task"] == "engage.dispatch_schedule"
    assert daily["args"] == ("daily-reminder", tomllib.loads(DAILY)["schedule"][0])
    assert daily["options"] == {"argsrepr": "['daily-reminder']", "kwargsrepr": "{}"}
    assert isinstance(daily["schedule"], crontab)
    assert isinstance(hourly["schedule"], AlignedInterval)
    assert hourly["schedule"].run_every == timedelta(seconds=3600)


def test_housekeeping_entries_sweep_every_minute_and_clean_hourly() -> None:
    """Beat runs the stuck-send sweep every minute and the dead-letter cleanup hourly."""
    entries = housekeeping_entries()
    assert {e["task"]: e["schedule"] for e in entries.values()} == {
        "engage.sweep_stuck": 60.0,
        "engage.dlq_cleanup": 3600.0,
    }


@pytest.mark.process
def test_celeryconfig_builds_beat_schedule_from_the_file(tmp_path: Path) -> None:
    """celeryconfig.beat_schedule holds the housekeeping entries and the file's schedules."""
    path = tmp_path / "s.toml"
    path.write_text(GOOD)
    result = run_python(
        "import celeryconfig; print(sorted(celeryconfig.beat_schedule))",
        env=child_env(OFFLINE_ENV, ENGAGE_SCHEDULE_FILE=str(path)),
    )
    assert result.stdout.strip() == str(
        sorted(
            [
                "engage-dlq-cleanup",
                "engage-schedule:daily-reminder",
                "engage-schedule:hourly",
                "engage-sweep-stuck",
            ]
        )
    )


@pytest.mark.process
def test_bad_file_stops_beat_with_one_line(tmp_path: Path) -> None:
    """``celery -A tasks beat`` with a bad file exits non-zero with one line naming the field."""
    path = tmp_path / "s.toml"
    path.write_text(one('every = 60\nmessage_id = 1\nrecipients = [{ mobile = "12" }]'))
    result = celery_command(
        "-A", "tasks", "beat", env=child_env(OFFLINE_ENV, ENGAGE_SCHEDULE_FILE=str(path))
    )
    assert result.returncode != 0
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert lines[-1].startswith("engage-sms: configuration error: ENGAGE_SCHEDULE_FILE: ")
    assert "schedule 'n': recipients[0].mobile" in lines[-1]
    assert "Traceback" not in result.stderr


# -- dispatch -------------------------------------------------------------------------------


def test_same_slot_dispatched_twice_publishes_once_per_recipient(
    rt: Runtime, broker: Broker
) -> None:
    """Two ticks of one run (two beats, a restart) enqueue each recipient exactly once."""
    schedule = schedule_from(DAILY)
    first = dispatch(rt, schedule, at("2024-05-01 09:00:01"))
    second = dispatch(rt, schedule, at("2024-05-01 09:20:00"))
    assert len(broker.published) == 3
    assert len({key for _, key, _ in broker.published}) == 3
    assert (first["enqueued"], second["duplicate"]) == (3, 3)
    assert "enqueued" not in second


def test_next_slot_sends_again(rt: Runtime, broker: Broker) -> None:
    """The next day's run is a new run: every recipient is enqueued again."""
    schedule = schedule_from(one(VALID_BODY))
    dispatch(rt, schedule, at("2024-05-01 09:00:01"))
    dispatch(rt, schedule, at("2024-05-02 09:00:01"))
    assert len({key for _, key, _ in broker.published}) == 2


def test_dispatch_keys_name_the_schedule_and_slot(rt: Runtime, broker: Broker) -> None:
    """Keys read beat:<name>:<slot>:<16 hex of the recipient>, with the run's slot, not now."""
    schedule = schedule_from(one(VALID_BODY, name="daily"))
    result = dispatch(rt, schedule, at("2024-05-01 11:45:00"))
    ((_, key, _),) = broker.published
    prefix, name, stamp, digest = key.split(":")
    assert (prefix, name, stamp) == ("beat", "daily", "20240501T090000Z")
    assert len(digest) == 16
    assert int(digest, 16) >= 0
    assert result["slot"] == "2024-05-01T09:00:00+00:00"


def test_recipient_digest_ignores_how_the_number_was_written() -> None:
    """The same contact written two ways gets one key; another contact gets another."""
    schedule = schedule_from(one(VALID_BODY))
    slot = at("2024-05-01 09:00:00")
    spaced, plain, other = (
        schedule_from(one(VALID_BODY.replace("+48505606707", number))).requests[0]
        for number in ("+48 505 606 707", "0048505606707", "+48505606708")
    )
    hasher = KeyHasher(fakeredis.FakeRedis(), keys=RedisKeys("t"))
    assert run_key(schedule, slot, spaced, hasher) == run_key(schedule, slot, plain, hasher)
    assert run_key(schedule, slot, spaced, hasher) != run_key(schedule, slot, other, hasher)


def test_changed_content_within_a_run_is_a_conflict_not_a_send(rt: Runtime, broker: Broker) -> None:
    """Editing parameters mid-run does not send the run a second time."""
    before = schedule_from(one(VALID_BODY + '\nparameters = { a = "1" }'))
    after = schedule_from(one(VALID_BODY + '\nparameters = { a = "2" }'))
    dispatch(rt, before, at("2024-05-01 09:00:01"))
    result = dispatch(rt, after, at("2024-05-01 09:30:00"))
    assert len(broker.published) == 1
    assert result["conflict"] == 1


def test_dispatch_task_refuses_an_unknown_schedule(rt: Runtime, broker: Broker) -> None:
    """A name this worker's file does not have fails the task and publishes nothing."""
    with pytest.raises(ConfigurationError, match="no schedule 'ghost'"):
        dispatch_schedule("ghost")
    assert broker.published == []


def test_a_schedule_s_expires_in_is_each_run_s_deadline(rt: Runtime, broker: Broker) -> None:
    """expires_in = 600 gives every send of the run a deadline 600 s after its enqueue."""
    schedule = schedule_from(one(VALID_BODY + "\nexpires_in = 600"))
    assert schedule.expires_in == 600.0
    dispatch(rt, schedule, at("2024-05-01 09:00:01"))
    ((_, key, _),) = broker.published
    seconds, _ = rt.redis.time()
    assert abs(float(rt.ledger.record(key)["expires_at"]) - (seconds + 600)) < 2


def test_a_bad_expires_in_is_named() -> None:
    """expires_in must be positive seconds."""
    assert "expires_in" in config_error(one(VALID_BODY + "\nexpires_in = -1"))


def test_a_dispatch_is_stamped_with_the_moment_beat_publishes_it(broker: Broker) -> None:
    """The tick's time travels in the message: the worker's clock at run time does not count."""
    before = datetime.now(UTC)
    dispatch_schedule.apply_async(("daily-reminder",))
    (message,) = broker.messages
    stamped = datetime.fromisoformat(message.headers[TICK_HEADER])
    assert before <= stamped <= datetime.now(UTC)


def test_the_slot_comes_from_the_tick_not_from_now() -> None:
    """A tick of yesterday 09:00 run today is yesterday's run."""
    tick = "2024-05-01T09:00:01+00:00"
    assert tick_of(Context({TICK_HEADER: tick})) == datetime(2024, 5, 1, 9, 0, 1, tzinfo=UTC)
    assert tick_of(Context({})) >= datetime.now(UTC) - timedelta(seconds=5)


def test_worker_without_the_file_dispatches_what_beat_published(
    rt: Runtime, broker: Broker
) -> None:
    """Only beat needs ENGAGE_SCHEDULE_FILE: the entry's arguments are the whole schedule."""
    (schedule,) = parse_schedules(tomllib.loads(one(VALID_BODY, name="daily")))
    ((name, table),) = [entry["args"] for entry in schedule_entries((schedule,)).values()]
    result = dispatch_schedule.run(name, json.loads(json.dumps(table)))  # as the broker carries it
    assert result["enqueued"] == 1
    assert len(broker.published) == 1


def test_dispatch_task_refuses_a_table_that_does_not_validate(rt: Runtime, broker: Broker) -> None:
    """A published schedule is validated again: a bad one fails the task, publishes nothing."""
    table = tomllib.loads(one(VALID_BODY, name="daily"))["schedule"][0]
    table = {**{k: v for k, v in table.items() if k != "cron"}, "every": 5}
    with pytest.raises(ConfigurationError, match="by beat: schedule 'daily': every: must be"):
        dispatch_schedule.run("daily", table)
    assert broker.published == []
