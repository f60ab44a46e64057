"""Helpers shared by every test layer; ``tests/conftest.py`` turns them into fixtures.

- :mod:`.environments`: every configuration handed to settings and to child processes.
- :mod:`.sandbox`: the local Engage sandbox, served for a fixture and reset per test.
- :mod:`.runtime`: runtimes on fakeredis, installed for the duration of a test.
- :mod:`.broker`: the package's Celery app on kombu's in-memory broker, and what it published.
- :mod:`.real_redis`: the local Redis: skip when it is missing, fail in CI.
- :mod:`.processes`: fresh interpreters and commands, for what is read once per process.
"""
