"""Service URLs: the password masked for errors, logs and ``doctor``; kombu's Sentinel form read.

A Sentinel URL is kombu's: one ``sentinel://`` URL per sentinel, joined by ``;``, e.g.
``sentinel://:pw@h1:26379/0;sentinel://h2:26379;sentinel://h3:26379``. The password and database
of the first one are the Redis primary's (as kombu reads them); the sentinels' own password is a
setting of its own (``ENGAGE_SENTINEL_PASSWORD``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import SplitResult, urlsplit, urlunsplit

SENTINEL_SCHEME = "sentinel"
#: Where a sentinel listens when its URL names no port.
SENTINEL_DEFAULT_PORT = 26379


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***``: ``redis://:***@redis:6379/0``."""
    if is_sentinel_url(url):
        return ";".join(_redact_one(part) for part in url.split(";"))
    return _redact_one(url)


def _redact_one(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = f"{parts.username}:" if parts.username else ":"
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}***@{host}"))


def is_sentinel_url(url: str) -> bool:
    """True for kombu's ``sentinel://`` form (one or more sentinels)."""
    return urlsplit(url.split(";", 1)[0]).scheme == SENTINEL_SCHEME


@dataclass(frozen=True)
class SentinelAddress:
    """A ``sentinel://`` URL read: the sentinels, and the primary's database and login."""

    sentinels: list[tuple[str, int]]
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)


def parse_sentinel_url(url: str) -> SentinelAddress:
    """The sentinels, database and primary login of ``url``; ValueError says what is wrong."""
    sentinels: list[tuple[str, int]] = []
    parts: list[SplitResult] = []
    for raw in url.split(";"):
        if not raw.strip():
            continue
        part = urlsplit(raw.strip())
        if part.scheme != SENTINEL_SCHEME or not part.hostname:
            raise ValueError("each part must be sentinel://host:port, joined by ';'")
        sentinels.append((part.hostname, part.port or SENTINEL_DEFAULT_PORT))
        parts.append(part)
    first = parts[0]
    db_text = first.path.strip("/") or "0"
    if not db_text.isdigit():
        raise ValueError(f"the database must be a number, got {db_text!r}")
    return SentinelAddress(
        sentinels=sentinels,
        db=int(db_text),
        username=first.username or None,
        password=first.password,
    )
