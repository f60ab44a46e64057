"""The stores' Lua scripts: files in ``tasks/state/lua/`` (package data), each read once.

A script is registered per client (``redis.Redis.register_script``): redis-py sends it by SHA
(``EVALSHA``) and loads it again only when the server does not know it.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

import redis
from redis.commands.core import Script


@cache
def source(name: str) -> str:
    """The text of ``lua/<name>.lua``."""
    return files("tasks.state").joinpath("lua", f"{name}.lua").read_text(encoding="utf-8")


def register(client: redis.Redis, name: str) -> Script:
    """``lua/<name>.lua`` registered on ``client``, ready to call with ``keys`` and ``args``."""
    return client.register_script(source(name))
