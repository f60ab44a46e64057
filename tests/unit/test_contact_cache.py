"""The contact-id cache, on fakeredis."""

from __future__ import annotations

import hashlib

import fakeredis
import redis

from tasks.state.contact_cache import ContactCache

PHONE = "48505606707"


def cache(client: fakeredis.FakeRedis | None = None, ttl: float = 3600) -> ContactCache:
    """A cache on fakeredis under the prefix ``t``."""
    return ContactCache(client or fakeredis.FakeRedis(), prefix="t", ttl=ttl)


def test_unknown_identifier_is_a_miss() -> None:
    """Nothing cached gives None."""
    assert cache().get("MOBILE", PHONE) is None


def test_put_then_get_returns_the_contact_id() -> None:
    """A stored contact id comes back as an int."""
    contacts = cache()
    contacts.put("MOBILE", PHONE, 123)
    assert contacts.get("MOBILE", PHONE) == 123


def test_key_holds_the_type_and_a_digest_of_the_value() -> None:
    """The key is prefix:contact:TYPE:sha256(value)[:32], never the raw number."""
    client = fakeredis.FakeRedis()
    cache(client).put("MOBILE", PHONE, 123)
    digest = hashlib.sha256(PHONE.encode()).hexdigest()[:32]
    assert client.keys("*") == [f"t:contact:MOBILE:{digest}".encode()]


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
    contacts = ContactCache(fakeredis.FakeRedis(decode_responses=True), prefix="t", ttl=60)
    contacts.put("MOBILE", PHONE, 123)
    assert contacts.get("MOBILE", PHONE) == 123


def test_zero_ttl_disables_the_cache_without_calling_redis() -> None:
    """ttl=0 caches nothing and never connects (this client has no server)."""
    nowhere = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    contacts = ContactCache(nowhere, prefix="t", ttl=0)
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
