"""``engage-sms doctor``'s checks of what the ledger's Redis means for "never twice, never lost".

Eviction (must be ``noeviction``) and persistence (AOF, RDB snapshots or nothing), each with
what it means for a send, and the Engage budget every worker shares through Redis.
"""

from __future__ import annotations

import redis

from tasks.cli.doctor import TIMEOUT, Check
from tasks.core.settings import Settings
from tasks.state.clients import redis_client
from tasks.state.keys import RedisKeys
from tasks.state.rate_limit import RateLimiter
from tasks.state.redis_safety import NOEVICTION, RedisSafety, eviction_problem, read_safety

NAMES = ("eviction", "persistence", "rate budget")


def redis_safety_checks(settings: Settings) -> list[Check]:
    """Eviction, persistence and the stored budget at REDIS_URL (skipped if it does not answer)."""
    client = redis_client(settings, socket_connect_timeout=TIMEOUT, socket_timeout=TIMEOUT)
    try:
        safety = read_safety(client)
        budget = check_budget(client, settings)
    except redis.RedisError:
        return [Check(name, None, "Redis did not answer") for name in NAMES]
    finally:
        client.close()
    return [check_eviction(safety, settings.redis_url), check_persistence(safety), budget]


def check_budget(client: redis.Redis, settings: Settings) -> Check:
    """The Engage budget kept in Redis, against this configuration's."""
    keys = RedisKeys(settings.key_prefix)
    limiter = RateLimiter(client, keys=keys, rate=settings.rate_limit, burst=settings.rate_burst)
    stored, own = limiter.stored(), limiter.configured
    if stored is None:
        return Check(
            "rate budget",
            True,
            f"none stored yet: the first worker with a limit stores its own ({own})",
        )
    if stored != own:
        return Check(
            "rate budget",
            False,
            f"MISMATCH: every worker keeps to the budget in Redis, {stored}, but this "
            f"configuration says {own} (ENGAGE_RATE_LIMIT, ENGAGE_RATE_BURST)",
            f"give every worker the same values; to change the budget, stop the workers, "
            f"DEL {keys.rate_budget} and start them with the new value",
        )
    return Check("rate budget", True, f"{stored}, shared by every worker through Redis")


def check_eviction(safety: RedisSafety, url: str) -> Check:
    """``maxmemory-policy`` is noeviction: a full Redis refuses writes rather than drop records."""
    if safety.policy is None:
        return Check(
            "eviction",
            None,
            "the server does not show maxmemory-policy (INFO refused); workers cannot check it",
            "make sure maxmemory-policy is noeviction",
        )
    problem = eviction_problem(safety.policy, url)
    if problem is not None:
        return Check(
            "eviction",
            False,
            f"maxmemory-policy {safety.policy}: Redis may drop ledger records and the HMAC "
            f"secret when memory runs short, and a send whose record is gone is sent again; "
            f"workers refuse to start and enqueues are refused",
            "CONFIG SET maxmemory-policy noeviction, and set it in redis.conf",
        )
    return Check(
        "eviction",
        True,
        f"maxmemory-policy {NOEVICTION}: when memory runs short Redis refuses writes (sends wait "
        f"and retry) instead of dropping a record",
    )


def check_persistence(safety: RedisSafety) -> Check:
    """AOF, RDB or nothing, and what a Redis restart does to the ledger with each.

    Without an append-only file it is a warning, not a failure: a throwaway Redis (a demo, the
    tests) is a choice, and only a restart of that server makes it matter.
    """
    if safety.aof:
        return Check(
            "persistence",
            True,
            "append-only file on: a restart keeps the ledger (with appendfsync everysec, up to "
            "about a second of writes can be lost in a crash of the machine)",
        )
    if safety.rdb_save:
        return Check(
            "persistence",
            True,
            f"RDB snapshots only (save {safety.rdb_save}): a restart goes back to the last "
            f"snapshot, so sends recorded since then are forgotten: a send recorded sent can be "
            f"sent again, a queued one is lost with its broker message if the broker is this Redis",
            "CONFIG SET appendonly yes, and appendonly yes in redis.conf",
            warning=True,
        )
    if safety.aof is None and safety.rdb_save is None:
        return Check(
            "persistence",
            None,
            "the server does not show its persistence (INFO and CONFIG refused)",
            "make sure the ledger's Redis keeps an append-only file (appendonly yes)",
        )
    return Check(
        "persistence",
        True,
        "none (no append-only file, no snapshots): a restart forgets the whole ledger: queued "
        "sends are lost, and a key already sent can be sent again",
        "CONFIG SET appendonly yes, and appendonly yes in redis.conf",
        warning=True,
    )
