"""A TCP proxy in front of one Redis server that holds its replication stream a few milliseconds.

For ``make failover``'s lag mode: on one machine a replica is never more than a few microseconds
behind, so a killed primary loses almost nothing; between hosts it is milliseconds behind. Bytes
from the server to a connection that spoke ``PSYNC``/``REPLCONF`` (a replica) are held ``lag``
(5-20 ms; the drill's control run holds them longer), in order; every other connection
(clients, sentinels) passes at once. :meth:`LagProxy.kill` drops whatever it holds, as a crashed
host would.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading

_REPLICATION_WORDS = (b"PSYNC", b"REPLCONF", b"SYNC")


class LagProxy:
    """Listens on ``listen_port``, forwards to ``target_port``; see the module."""

    def __init__(self, listen_port: int, target_port: int, lag: tuple[float, float]) -> None:
        self.listen_port = listen_port
        self.target_port = target_port
        self.lag = lag
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.base_events.Server | None = None
        self._transports: set[asyncio.WriteTransport] = set()
        self._dead = False
        # Connections cut by kill() are the point, not errors worth a traceback.
        self._loop.set_exception_handler(self._unless_killed)

    def start(self) -> LagProxy:
        """Listen (returns once the port is open)."""
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(timeout=10)
        return self

    def kill(self) -> None:
        """Close the port and every connection at once, dropping bytes held back."""
        if self._dead:
            return
        self._dead = True
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def _unless_killed(self, loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
        # A peer that closes or resets its connection is ordinary traffic, not an error.
        if not self._dead and not isinstance(context.get("exception"), OSError):
            loop.default_exception_handler(context)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, "127.0.0.1", self.listen_port, reuse_address=True
        )

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        for transport in list(self._transports):
            transport.abort()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            await self._relay(client_r, client_w)

    async def _relay(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            client_w.transport.abort()
            return
        self._transports.update((client_w.transport, server_w.transport))
        replication = asyncio.Event()
        await asyncio.gather(
            self._upstream(client_r, server_w, replication),
            self._downstream(server_r, client_w, replication),
            return_exceptions=True,
        )
        for writer in (client_w, server_w):
            self._transports.discard(writer.transport)
            writer.transport.abort()

    async def _upstream(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, replication: asyncio.Event
    ) -> None:
        while data := await reader.read(65536):
            if not replication.is_set() and any(w in data.upper() for w in _REPLICATION_WORDS):
                replication.set()
            writer.write(data)
            await writer.drain()
        writer.transport.abort()

    async def _downstream(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, replication: asyncio.Event
    ) -> None:
        loop = asyncio.get_running_loop()
        held: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        releaser = asyncio.ensure_future(self._release(held, writer))
        try:
            while data := await reader.read(65536):
                if replication.is_set():
                    # Each chunk is held (5-20 ms), and never passes the one ahead of it.
                    held.put_nowait((loop.time() + random.uniform(*self.lag), data))
                else:
                    writer.write(data)
                    await writer.drain()
            held.put_nowait((0.0, b""))
            await releaser
        finally:
            releaser.cancel()
            writer.transport.abort()

    async def _release(
        self, held: asyncio.Queue[tuple[float, bytes]], writer: asyncio.StreamWriter
    ) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due, data = await held.get()
            if not data:
                return
            await asyncio.sleep(max(0.0, due - loop.time()))
            if self._dead or writer.transport.is_closing():
                return
            writer.write(data)
