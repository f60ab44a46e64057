"""The contact-id cache, on fakeredis."""

from __future__ import annotations

import hashlib
import re

import fakeredis
import redis

from tasks.state.contact_cache import ContactCache
from tasks.state.hashing import KeyHasher
from tasks.state.keys import RedisKeys

PHONE = "48505606707"
KEYS = RedisKeys("t")


def cache(client: redis.Redis | None = None, ttl: float = 3600) -> ContactCache:
    """A cache on fakeredis (unless a client is given) under the prefix ``t``."""
    client = client or fakeredis.FakeRedis()
    return ContactCache(client, keys=KEYS, hasher=KeyHasher(client, keys=KEYS), ttl=ttl)


def test_unknown_identifier_is_a_miss() -> None:
    """Nothing cached gives None."""
    assert cache().get("MOBILE", PHONE) is None


def test_put_then_get_returns_the_contact_id() -> None:
    """A stored contact id comes back as an int."""
    contacts = cache()
    contacts.put("MOBILE", PHONE, 123)
    assert contacts.get("MOBILE", PHONE) == 123


def test_key_holds_the_type_and_a_keyed_digest_of_the_value() -> None:
    """The key is prefix:contact:TYPE:<32 hex>, with neither the number nor its plain SHA-256."""
    client = fakeredis.FakeRedis(decode_responses=True)
    cache(client).put("MOBILE", PHONE, 123)
    (key,) = client.keys("t:contact:*")
    assert isinstance(key, str)
    assert re.fullmatch(r"t:contact:MOBILE:[0-9a-f]{32}", key)
    assert PHONE not in key
    assert hashlib.sha256(PHONE.encode()).hexdigest()[:32] not in key


def test_two_caches_on_one_redis_derive_the_same_key() -> None:
    """A second process (another cache on the same Redis) finds what the first one stored."""
    client = fakeredis.FakeRedis()
    cache(client).put("MOBILE", PHONE, 123)
    other = cache(client)
    assert other.get("MOBILE", PHONE) == 123


def test_another_secret_gives_another_key() -> None:
    """Two Redis servers, two secrets: the same number gets different keys."""
    assert cache().key("MOBILE", PHONE) != cache().key("MOBILE", PHONE)


def test_stored_value_is_only_the_contact_id() -> None:
    """The value stored is the id alone, with no trace of the identifier."""
    client = fakeredis.FakeRedis()
    contacts = cache(client)
    contacts.put("MOBILE", PHONE, 123)
    assert client.get(contacts.key("MOBILE", PHONE)) == b"123"


def test_identifier_types_are_cached_apart() -> None:
    """The same value under another type is another entry."""
    contacts = cache()
    contacts.put("EMAIL", "ann@example.com", 1)
    contacts.put("EXTERNAL", "ann@example.com", 2)
    assert (
        contacts.get("EMAIL", "ann@example.com"),
        contacts.get("EXTERNAL", "ann@example.com"),
    ) == (
        1,
        2,
    )


def test_put_replaces_an_older_id() -> None:
    """A second put for the same identifier wins."""
    contacts = cache()
    contacts.put("MOBILE", PHONE, 1)
    contacts.put("MOBILE", PHONE, 2)
    assert contacts.get("MOBILE", PHONE) == 2


def test_entries_are_stored_with_the_ttl() -> None:
    """An entry is stored with the configured time to live."""
    client = fakeredis.FakeRedis()
    contacts = cache(client, ttl=60)
    contacts.put("MOBILE", PHONE, 123)
    assert 59_000 < client.pttl(contacts.key("MOBILE", PHONE)) <= 60_000


def test_invalidate_forgets_the_identifier() -> None:
    """After invalidate() the identifier is a miss again."""
    contacts = cache()
    contacts.put("MOBILE", PHONE, 123)
    contacts.invalidate("MOBILE", PHONE)
    assert contacts.get("MOBILE", PHONE) is None


def test_unreadable_entry_is_a_miss() -> None:
    """A value that is not a number is treated as not cached, not as an error."""
    client = fakeredis.FakeRedis()
    contacts = cache(client)
    client.set(contacts.key("MOBILE", PHONE), b"garbage")
    assert contacts.get("MOBILE", PHONE) is None


def test_works_with_a_decoding_client() -> None:
    """A client with decode_responses=True returns str values, still read as ints."""
    contacts = cache(fakeredis.FakeRedis(decode_responses=True), ttl=60)
    contacts.put("MOBILE", PHONE, 123)
    assert contacts.get("MOBILE", PHONE) == 123


def test_zero_ttl_disables_the_cache_without_calling_redis() -> None:
    """ttl=0 caches nothing and never connects (this client has no server)."""
    nowhere = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    contacts = cache(nowhere, ttl=0)
    contacts.put("MOBILE", PHONE, 123)
    contacts.invalidate("MOBILE", PHONE)
    assert contacts.get("MOBILE", PHONE) is None
    assert contacts.lookup_key("MOBILE", PHONE) is None


def test_lookup_key_is_the_key_get_reads() -> None:
    """A caller reading lookup_key() itself and decoding the value sees what get() sees."""
    client = fakeredis.FakeRedis()
    contacts = cache(client)
    contacts.put("MOBILE", PHONE, 123)
    lookup_key = contacts.lookup_key("MOBILE", PHONE)
    assert lookup_key is not None
    assert contacts.decode(client.get(lookup_key)) == 123
