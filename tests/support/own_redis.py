"""The test session's own Redis server: a throwaway ``redis-server`` on a free loopback port.

Tests never use a Redis they did not start (a developer's 6379 may hold an application's data).
The first process of a test session starts the server and records its port in
``ENGAGE_TEST_REDIS_PORT``; child processes (workers, Flower, fresh interpreters) inherit the
variable and connect to the same server. Setting the variable by hand points the tests at a
server you started yourself for them.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

from tasks.cli.redis_server import RedisServer

#: Names the port of the test session's Redis, for this process and its children.
PORT_VARIABLE = "ENGAGE_TEST_REDIS_PORT"


def session_redis_port() -> int:
    """The port of the session's Redis, started on first use and stopped when this process exits."""
    given = os.environ.get(PORT_VARIABLE)
    if given:
        return int(given)
    data_dir = Path(tempfile.mkdtemp(prefix="engage-test-redis-"))
    server = RedisServer(data_dir, persistent=False).start()
    atexit.register(shutil.rmtree, data_dir, True)
    atexit.register(server.stop)
    os.environ[PORT_VARIABLE] = str(server.port)
    return server.port


def session_redis_url(db: int) -> str:
    """``redis://`` URL of database ``db`` on the session's Redis."""
    return f"redis://127.0.0.1:{session_redis_port()}/{db}"
