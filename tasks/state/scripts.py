"""The stores' Lua scripts: files in ``tasks/state/lua/`` (package data), each read once.

A script is registered per client (``redis.Redis.register_script``): redis-py sends it by SHA
(``EVALSHA``) and loads it again only when the server does not know it.

Redis scripts cannot load one another, so a function several scripts share lives in
``lua/lib/<name>.lua`` and a script names it on a line of its own, ``--#include <name>``:
:func:`source` puts the function's text in that line's place.
"""

from __future__ import annotations

import re
from functools import cache
from importlib.resources import files

import redis
from redis.commands.core import Script

#: A line that stands for ``lua/lib/<name>.lua``.
INCLUDE = re.compile(r"^--#include (\w+)$", re.MULTILINE)


def _read(path: str) -> str:
    """The text of ``lua/<path>``."""
    return files("tasks.state").joinpath("lua", *path.split("/")).read_text(encoding="utf-8")


@cache
def source(name: str) -> str:
    """The text of ``lua/<name>.lua``, each ``--#include`` line replaced by its library's text."""
    return INCLUDE.sub(lambda line: _read(f"lib/{line[1]}.lua").rstrip("\n"), _read(f"{name}.lua"))


def register(client: redis.Redis, name: str) -> Script:
    """``lua/<name>.lua`` registered on ``client``, ready to call with ``keys`` and ``args``."""
    return client.register_script(source(name))
