"""Every answer body is read bounded: at most :data:`MAX_ANSWER_BYTES` after decoding, in time.

``requests`` reads a whole body into memory, decompressed, before anything can look at it: a
1 MB gzip error page that inflates to gigabytes takes the worker's memory with it. Calls are
made with ``stream=True`` and the body is read here in chunks (urllib3 decodes each chunk with
a bound on its output), stopping at the size limit or the deadline. What was read becomes the
response's ``content``, which the readers of answers work on; a body cut short raises
:class:`BodyNotRead`, which :mod:`tasks.engage.http` turns into the error the status calls for.
"""

from __future__ import annotations

import time

import requests

from tasks.core.errors import Rebuildable

#: Largest answer body read, decoded. Engage's answers are a contact (a few KB with its
#: attributes), an error body or a SOAP envelope of the same; 1 MiB leaves room for big contacts.
MAX_ANSWER_BYTES = 1 << 20
#: Decoded bytes asked for per read: the most a compressed chunk may inflate to at once.
CHUNK = 64 * 1024


class BodyNotRead(Rebuildable):
    """The body was cut off unread: too large, or not done by the deadline; ``why`` says which."""

    _fields = ("why",)

    def __init__(self, why: str) -> None:
        self.why = why
        super().__init__(why)


def read_body(
    response: requests.Response, *, deadline: float, limit: int = MAX_ANSWER_BYTES
) -> None:
    """Read ``response``'s body into ``response.content``, or raise :class:`BodyNotRead`.

    ``deadline`` is a :func:`time.monotonic` instant. Transport errors while reading are the
    ``requests`` exceptions of a non-streamed call (the failure tables sort them). After
    :class:`BodyNotRead` the connection is closed, never returned to the pool half-read, and
    ``content`` holds what was read (at most ``limit`` bytes).
    """
    if response.raw is None:
        return  # a transport seam (a test's adapter) that set the content itself
    chunks: list[bytes] = []
    size = 0
    why = None
    for chunk in response.iter_content(CHUNK):
        size += len(chunk)
        if size > limit:
            why = f"answer body larger than {_size(limit)}, not read"
            break
        chunks.append(chunk)
        if time.monotonic() > deadline:
            why = f"answer body not read in time ({_size(size)} so far)"
            break
    # requests' own way of holding a read body: every reader of the answer sees these bytes.
    response._content = b"".join(chunks)
    if why is not None:
        response.close()
        raise BodyNotRead(why)


def _size(count: int) -> str:
    if count >= 1 << 20 and count % (1 << 20) == 0:
        return f"{count >> 20} MiB"
    if count >= 1 << 10:
        return f"{count / 1024:.0f} KiB"
    return f"{count} bytes"
