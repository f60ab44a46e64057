"""Sentinel URLs, the master name and the replica acks, read from the environment; the clients."""

from __future__ import annotations

import pytest
import redis
from redis.sentinel import SentinelConnectionPool

from tasks.core.errors import ConfigurationError, ServiceUnavailable
from tasks.core.settings import load_settings
from tasks.core.urls import parse_sentinel_url, redact_url
from tasks.state.clients import broker_transport_options, redis_client

SENTINELS = "sentinel://:secret@h1:26379/2;sentinel://h2:26380;sentinel://h3"


def test_sentinel_url_needs_the_master_name() -> None:
    """A sentinel:// broker without ENGAGE_REDIS_MASTER_NAME is refused, naming the variable."""
    with pytest.raises(ConfigurationError) as caught:
        load_settings({"ENGAGE_BROKER_URL": SENTINELS})
    assert caught.value.setting == "ENGAGE_REDIS_MASTER_NAME"


def test_sentinel_url_is_read_in_kombus_form() -> None:
    """Every sentinel, the primary's database and password come from kombu's ;-joined form."""
    address = parse_sentinel_url(SENTINELS)
    assert address.sentinels == [("h1", 26379), ("h2", 26380), ("h3", 26379)]
    assert (address.db, address.password) == (2, "secret")


def test_malformed_sentinel_url_is_named() -> None:
    """A part that is no sentinel:// URL stops the settings with the variable's name."""
    with pytest.raises(ConfigurationError) as caught:
        load_settings(
            {"REDIS_URL": "sentinel://h1:26379;redis://h2", "ENGAGE_REDIS_MASTER_NAME": "m"}
        )
    assert caught.value.setting == "REDIS_URL"


def test_replica_acks_default_to_one_on_sentinel_and_zero_otherwise() -> None:
    """The barrier is on by default with Sentinel only; both can be set."""
    sentinel = {"ENGAGE_BROKER_URL": SENTINELS, "ENGAGE_REDIS_MASTER_NAME": "engage"}
    assert load_settings(sentinel).replica_acks == 1
    assert load_settings({}).replica_acks == 0
    chosen = load_settings(
        {**sentinel, "ENGAGE_REPLICA_ACKS": "2", "ENGAGE_REPLICA_ACK_TIMEOUT": "250"}
    )
    assert (chosen.replica_acks, chosen.replica_ack_timeout) == (2, 250.0)


def test_sentinel_passwords_are_masked_and_kept_out_of_the_repr() -> None:
    """The primary's password is masked in every part; the sentinels' is never in the repr."""
    settings = load_settings(
        {
            "ENGAGE_BROKER_URL": SENTINELS,
            "ENGAGE_REDIS_MASTER_NAME": "engage",
            "ENGAGE_SENTINEL_PASSWORD": "sentinel-secret",
        }
    )
    assert "sentinel-secret" not in repr(settings)
    assert redact_url(SENTINELS) == "sentinel://:***@h1:26379/2;sentinel://h2:26380;sentinel://h3"
    error = ServiceUnavailable("redis", SENTINELS, "refused")
    assert "secret" not in str(error)


def test_one_function_builds_redis_and_sentinel_clients() -> None:
    """redis:// gives a plain client; sentinel:// one that asks the sentinels for the primary."""
    settings = load_settings(
        {
            "REDIS_URL": SENTINELS,
            "ENGAGE_REDIS_MASTER_NAME": "engage",
            "ENGAGE_SENTINEL_PASSWORD": "sentinel-secret",
        }
    )
    client = redis_client(settings, socket_timeout=3)
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool)
    assert pool.service_name == "engage"
    assert pool.connection_kwargs["db"] == 2
    assert pool.connection_kwargs["password"] == "secret"
    sentinel = pool.sentinel_manager.sentinels[0]
    assert sentinel.connection_pool.connection_kwargs["password"] == "sentinel-secret"
    plain = redis_client(settings, "redis://127.0.0.1:9/3")
    assert isinstance(plain, redis.Redis)
    assert plain.connection_pool.connection_kwargs["db"] == 3


def test_broker_transport_gets_the_master_name_only_on_sentinel() -> None:
    """kombu's Sentinel transport is told the master name and the sentinels' password."""
    settings = load_settings(
        {
            "ENGAGE_BROKER_URL": SENTINELS,
            "ENGAGE_REDIS_MASTER_NAME": "engage",
            "ENGAGE_SENTINEL_PASSWORD": "sentinel-secret",
        }
    )
    options = broker_transport_options(settings)
    assert options["master_name"] == "engage"
    assert options["sentinel_kwargs"]["password"] == "sentinel-secret"
    assert broker_transport_options(load_settings({})) == {}
