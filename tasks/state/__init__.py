"""Everything the package keeps in Redis: the ledger, dead letters, rate limit, caches, flags.

Imports neither Celery nor requests: each store is a small class over a ``redis.Redis`` client.
Every key is named in :mod:`tasks.state.keys`; the scripts are ``lua/*.lua`` beside the code.
"""

import redis

#: Redis does not answer for now (refused, reset, still loading its data, timed out): what the
#: workers wait out and retry, as opposed to a bug. ``tasks.outages`` names these to callers.
REDIS_UNREACHABLE: tuple[type[Exception], ...] = (redis.ConnectionError, redis.TimeoutError)
