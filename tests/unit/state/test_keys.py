"""The key schema, the keyed digests in key names, and the Lua scripts shipped as files."""

from __future__ import annotations

import hashlib
import tomllib
from datetime import UTC, datetime
from importlib.resources import files

import fakeredis
import redis

from tasks.core.schedule_file import parse_schedules
from tasks.state import scripts
from tasks.state.credentials import AuthCircuit
from tasks.state.hashing import KeyHasher
from tasks.state.keys import RedisKeys
from tasks.worker.beat_schedule import run_key

KEYS = RedisKeys("engage")


def test_key_names_are_the_ones_deployed_data_uses() -> None:
    """Every fixed key keeps its name: renaming one would orphan what Redis already holds."""
    assert [
        KEYS.send("k1"),
        KEYS.inflight,
        KEYS.dlq,
        KEYS.dlq_entries,
        KEYS.dlq_reasons,
        KEYS.rate_limit,
        KEYS.sweep_lock,
    ] == [
        "engage:send:k1",
        "engage:inflight",
        "engage:dlq",
        "engage:dlq:entries",
        "engage:dlq:reasons",
        "engage:rate:engage",
        "engage:housekeeping:sweep",
    ]


def test_hashers_on_one_redis_share_one_secret() -> None:
    """Two processes (two hashers on the same Redis) derive the same digest."""
    client = fakeredis.FakeRedis()
    first = KeyHasher(client, keys=KEYS).digest("contact", "48505606707", 32)
    second = KeyHasher(client, keys=KEYS).digest("contact", "48505606707", 32)
    assert first == second


def test_the_first_secret_is_kept() -> None:
    """A secret already in Redis is used, never replaced (SET NX)."""
    client = fakeredis.FakeRedis()
    client.set(KEYS.hmac_secret, "an operator's secret")
    KeyHasher(client, keys=KEYS).digest("contact", "48505606707", 32)
    assert client.get(KEYS.hmac_secret) == b"an operator's secret"


def test_another_secret_gives_another_digest() -> None:
    """The digest depends on the secret: without it, trying every number finds nothing."""
    one, other = fakeredis.FakeRedis(), fakeredis.FakeRedis()
    other.set(KEYS.hmac_secret, "another secret")
    digests = {KeyHasher(c, keys=KEYS).digest("contact", "48505606707", 32) for c in (one, other)}
    assert len(digests) == 2


def test_a_new_secret_is_64_hex_digits() -> None:
    """The secret made on first use is 32 random bytes, stored as hex."""
    client = fakeredis.FakeRedis(decode_responses=True)
    KeyHasher(client, keys=KEYS).digest("contact", "x", 8)
    secret = client.get(KEYS.hmac_secret)
    assert isinstance(secret, str)
    assert len(bytes.fromhex(secret)) == 32


def test_purposes_keep_digests_of_one_value_apart() -> None:
    """The same value hashed for two kinds of key gives two unrelated digests."""
    hasher = KeyHasher(fakeredis.FakeRedis(), keys=KEYS)
    assert hasher.digest("contact", "48505606707", 16) != hasher.digest("beat", "48505606707", 16)


def test_credentials_flag_name_reveals_no_plain_digest() -> None:
    """The flag's name holds a keyed digest, not the start of sha256(user NUL password)."""
    client = fakeredis.FakeRedis()
    hasher = KeyHasher(client, keys=KEYS)
    flag = AuthCircuit(client, keys=KEYS, hasher=hasher, username="u", password="p").key
    plain = hashlib.sha256(b"u\0p").hexdigest()[:16]
    assert flag.startswith("engage:auth_failed:")
    assert plain not in flag
    assert flag == AuthCircuit(client, keys=KEYS, hasher=hasher, username="u", password="p").key


def test_beat_run_key_shows_the_recipient_only_as_a_keyed_digest() -> None:
    """A scheduled send's idempotency key (logged, part of key names) has no plain digest."""
    (schedule,) = parse_schedules(
        tomllib.loads(
            '[[schedule]]\nname = "n"\nevery = 60\nmessage_id = 1\n'
            'recipients = [{ mobile = "+48505606707" }]'
        )
    )
    hasher = KeyHasher(fakeredis.FakeRedis(), keys=KEYS)
    key = run_key(schedule, datetime(2024, 5, 1, tzinfo=UTC), schedule.requests[0], hasher)
    ident = schedule.requests[0].identifier
    plain = hashlib.sha256(f"{ident.type}:{ident.value}".encode()).hexdigest()[:16]
    assert key.startswith("beat:n:20240501T000000Z:")
    assert plain not in key
    assert ident.value not in key


def test_every_lua_file_compiles_on_redis(real_redis: redis.Redis) -> None:
    """Each shipped script is Lua that Redis accepts (SCRIPT LOAD compiles it, runs nothing)."""
    names = sorted(
        f.name.removesuffix(".lua")
        for f in files("tasks.state").joinpath("lua").iterdir()
        if f.name.endswith(".lua")
    )
    assert "mark_sent" in names
    for name in names:
        assert real_redis.script_load(scripts.source(name))
