"""Everything the package keeps in Redis: the ledger, dead letters, rate limit, caches, flags.

Imports neither Celery nor requests: each store is a small class over a ``redis.Redis`` client.
Every key is named in :mod:`tasks.state.keys`; the scripts are ``lua/*.lua`` beside the code.
"""

from tasks.core.redis_errors import REDIS_UNREACHABLE

__all__ = ["REDIS_UNREACHABLE"]
