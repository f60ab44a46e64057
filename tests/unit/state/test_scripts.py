"""The Lua scripts' loader: a script's ``--#include`` lines become the shared functions' text."""

from __future__ import annotations

from importlib.resources import files

from tasks.state import scripts

LUA = files("tasks.state").joinpath("lua")


def test_an_include_line_is_replaced_by_its_library() -> None:
    """Both final-state scripts get the one slim-record rewrite, and no include line is left."""
    function = LUA.joinpath("lib", "slim_record.lua").read_text(encoding="utf-8").rstrip("\n")
    for name in ("mark_final", "mark_sent"):
        text = scripts.source(name)
        assert function in text
        assert not scripts.INCLUDE.search(text)


def test_every_include_names_a_library() -> None:
    """Each ``--#include`` in a shipped script names a file in ``lua/lib/``."""
    libraries = {f.name.removesuffix(".lua") for f in LUA.joinpath("lib").iterdir()}
    included = {
        line[1]
        for f in LUA.iterdir()
        if f.name.endswith(".lua")
        for line in scripts.INCLUDE.finditer(f.read_text(encoding="utf-8"))
    }
    assert included
    assert included <= libraries
