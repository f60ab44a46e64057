"""The HTTP front door's per-process objects, built on the package's :class:`Runtime`."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from tasks.delivery.runtime import Runtime, current_runtime
from tasks.http.audit import AuditLog
from tasks.http.keys import HttpKeys
from tasks.http.limits import TokenLimits
from tasks.http.sends import SendOwners
from tasks.http.sessions import ConsoleSessions
from tasks.http.tokens import TokenStore
from tasks.worker.app import engage_settings


@dataclass(frozen=True)
class HttpServices:
    """Tokens, limits, send owners, console sessions and audit log on one Runtime's Redis."""

    runtime: Runtime
    keys: HttpKeys
    tokens: TokenStore
    limits: TokenLimits
    owners: SendOwners
    sessions: ConsoleSessions
    audit: AuditLog

    @classmethod
    def build(cls, rt: Runtime) -> HttpServices:
        """Wire the stores on ``rt``'s Redis and settings."""
        keys = HttpKeys(rt.settings.key_prefix)
        client = rt.redis
        retention = rt.settings.key_retention
        return cls(
            runtime=rt,
            keys=keys,
            tokens=TokenStore(client, keys=keys, hasher=rt.hasher),
            limits=TokenLimits(client, keys=keys, rate_limit=rt.settings.http.rate_limit),
            owners=SendOwners(client, keys=keys, retention=retention, ledger_record=rt.keys.send),
            sessions=ConsoleSessions(client, keys=keys),
            audit=AuditLog(client, keys=keys, retention=retention),
        )


_lock = threading.Lock()
_built: tuple[int, HttpServices] | None = None


def current_services() -> HttpServices:
    """This process's services, on the runtime :mod:`tasks.api` uses (rebuilt when it changes)."""
    global _built  # noqa: PLW0603  (one set per runtime, as the runtime is one per process)
    rt = current_runtime(engage_settings())
    with _lock:
        if _built is None or _built[0] != id(rt):
            _built = (id(rt), HttpServices.build(rt))
        return _built[1]
