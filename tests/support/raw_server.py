"""A local TCP server that reads one HTTP request and answers with whatever bytes a test gives.

For answers no HTTP server library would write: cut bodies, broken chunking, garbage status
lines, endless headers. Each connection reads the request head and its Content-Length body,
counts it in ``requests`` (and keeps its body in ``bodies``), then writes ``answer`` and closes.
"""

from __future__ import annotations

import socket
import threading
from types import TracebackType


class RawServer:
    """Serves one fixed answer (bytes) to every request on a free loopback port."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.requests = 0
        self.bodies: list[bytes] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:port``."""
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def __enter__(self) -> RawServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._listener.close()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(connection,), daemon=True).start()

    def _answer(self, connection: socket.socket) -> None:
        with connection:
            connection.settimeout(5)
            data = b""
            try:
                while b"\r\n\r\n" not in data:
                    chunk = connection.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                head, _, body = data.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip())
                while len(body) < length:
                    chunk = connection.recv(65536)
                    if not chunk:
                        return
                    body += chunk
                self.requests += 1
                self.bodies.append(body)
                connection.sendall(self.answer)
                connection.shutdown(socket.SHUT_WR)
            except OSError:
                return
