"""The package's exceptions: masked() copies whose every text is masked, and nothing more;
every exception class rebuilt from its fields by pickle and copy."""

from __future__ import annotations

import collections.abc
import copy
import importlib
import inspect
import pickle
import pkgutil
import types
import typing
from collections.abc import Callable
from typing import Any

import pytest

import tasks
from tasks.core.errors import (
    EngageServerError,
    OutcomeUnknown,
    RateLimited,
    Rebuildable,
    RequestNotSent,
    UnexpectedAnswer,
    UnknownRecipient,
)
from tasks.core.masking import Masker

SECRET = "Zebulon Quartz"
MASK = Masker([SECRET])


def test_masked_api_error_keeps_what_retries_decide_on() -> None:
    """Type, status, error code and Retry-After survive; the copy is a new object."""
    err = RateLimited("contact/get", status=429, error_code="OPERATION_DISABLED", retry_after=7.0)
    copy = err.masked(MASK)
    assert type(copy) is RateLimited
    assert (copy.status, copy.error_code, copy.retry_after) == (429, "OPERATION_DISABLED", 7.0)
    assert copy is not err


def test_masked_api_error_masks_message_and_every_detail() -> None:
    """Engage's message and each text in its details, nested ones too, are masked."""
    err = UnknownRecipient(
        "contact/get",
        status=400,
        error_code="NO_SUCH_OBJECT",
        message=f"no contact {SECRET}",
        details={"value": SECRET, "more": {"list": [SECRET, 3]}},
    )
    copy = err.masked(MASK)
    assert copy.engage_message == "no contact ***"
    assert copy.details == {"value": "***", "more": {"list": ["***", 3]}}
    assert copy.to_dict()["message"] == "no contact ***"


def test_masked_unexpected_answer_masks_problem_and_location() -> None:
    """The quoted page and the redirect target are masked; may_have_acted is kept."""
    err = UnexpectedAnswer(
        "message/sendSingle",
        status=302,
        content_type="text/html",
        problem=f"a page titled {SECRET}",
        location="https://proxy.example/for/cust-991",
        may_have_acted=True,
    )
    copy = err.masked(Masker([SECRET, "cust-991"]))
    assert copy.problem == "a page titled ***"
    assert copy.location == "https://proxy.example/for/***"
    assert copy.may_have_acted


@pytest.mark.parametrize("kind", [RequestNotSent, OutcomeUnknown])
def test_masked_transport_error_masks_its_description(
    kind: type[RequestNotSent | OutcomeUnknown],
) -> None:
    """Errors without an answer mask their text too (a proxy's reason may quote anything)."""
    copy = kind("contact/get", f"connection lost after {SECRET}").masked(MASK)
    assert type(copy) is kind
    assert str(copy) == "contact/get: connection lost after ***"


def test_masked_copy_args_hold_only_masked_text() -> None:
    """args, which Celery's repr and Flower's traceback show, are built from the masked texts."""
    err = EngageServerError("message/sendSingle", status=503, message=f"failed for {SECRET}")
    assert err.masked(MASK).args == ("message/sendSingle: HTTP 503: failed for ***",)


def test_masked_copy_carries_no_chain() -> None:
    """The original's cause and context (a parser error quoting the answer) are not carried over."""
    try:
        try:
            raise ValueError(f"unreadable: {SECRET}")
        except ValueError as parse_error:
            raise RequestNotSent("contact/get", "x") from parse_error
    except RequestNotSent as err:
        copy = err.masked(MASK)
    assert (copy.__cause__, copy.__context__, copy.__traceback__) == (None, None, None)


def exception_classes() -> list[type[Exception]]:
    """Every exception class defined in the package, found by importing each of its modules."""
    found: set[type[Exception]] = set()
    for module in pkgutil.walk_packages(tasks.__path__, "tasks."):
        if module.name.rsplit(".", 1)[-1] == "__main__":
            continue  # runs the CLI when imported
        for value in vars(importlib.import_module(module.name)).values():
            if (
                isinstance(value, type)
                and issubclass(value, Exception)
                and value.__module__.split(".")[0] == "tasks"
            ):
                found.add(value)
    return sorted(found, key=lambda cls: f"{cls.__module__}.{cls.__qualname__}")


def sample(name: str, hint: Any, *, plain: bool) -> Any:
    """A value of the type ``hint`` for the argument ``name``; texts quote SECRET unless plain."""
    options = [arg for arg in typing.get_args(hint) if arg is not type(None)]
    if options and typing.get_origin(hint) in (types.UnionType, typing.Union):
        hint = options[0]
    origin = typing.get_origin(hint) or hint
    if isinstance(origin, type) and issubclass(origin, Exception):
        return build(origin)
    values: dict[Any, Any] = {
        str: name if plain else f"{name} {SECRET}",
        bool: True,
        int: 418,
        float: 2.5,
        collections.abc.Mapping: {"value": SECRET, "more": [SECRET, 3]},
    }
    return values[origin]


def arguments(cls: type[Exception]) -> list[str]:
    """The names of the arguments ``cls``'s constructor takes (``*args`` and ``**kwargs`` aside)."""
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    return [
        name
        for name, parameter in inspect.signature(cls.__init__).parameters.items()
        if name != "self" and parameter.kind not in variadic
    ]


def build(cls: type[Exception]) -> Exception:
    """An instance of ``cls`` with a sample value for each of its constructor's arguments."""
    hints = typing.get_type_hints(cls.__init__)
    plain = getattr(cls, "_plain", ())
    return cls(**{name: sample(name, hints[name], plain=name in plain) for name in arguments(cls)})


def fields_of(err: Exception) -> Any:
    """What an error is made of, comparable with ==: its type, text and fields, nested ones too."""
    assert isinstance(err, Rebuildable)
    return (
        type(err),
        str(err),
        err.args,
        {k: fields_of(v) if isinstance(v, Exception) else v for k, v in err.fields().items()},
    )


def texts(value: Any) -> list[str]:
    """Every string inside ``value`` (dicts, lists and errors walked)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, Rebuildable):
        return [str(value), *texts(value.fields())]
    if isinstance(value, collections.abc.Mapping):
        return [t for v in value.values() for t in texts(v)]
    if isinstance(value, list | tuple):
        return [t for v in value for t in texts(v)]
    return []


@pytest.mark.parametrize("cls", exception_classes(), ids=lambda cls: cls.__qualname__)
@pytest.mark.parametrize(
    "rebuilt",
    [
        pytest.param(lambda err: pickle.loads(pickle.dumps(err)), id="pickle"),  # noqa: S301  (our own bytes)
        pytest.param(copy.copy, id="copy"),
        pytest.param(copy.deepcopy, id="deepcopy"),
    ],
)
def test_every_exception_rebuilds_from_its_fields(
    cls: type[Exception], rebuilt: Callable[[Exception], Exception]
) -> None:
    """Each exception class survives pickle and copy with its fields, text and masked() intact."""
    assert issubclass(cls, Rebuildable), f"{cls.__qualname__} is not on the Rebuildable base"
    err = build(cls)
    assert isinstance(err, Rebuildable)
    assert list(err.fields()) == arguments(cls)
    again = rebuilt(err)
    assert again is not err
    assert fields_of(again) == fields_of(err)
    assert isinstance(again, Rebuildable)  # narrows the type for mypy
    assert fields_of(again.masked(MASK)) == fields_of(err.masked(MASK))
    shown = err.masked(MASK)
    assert {k: v for k, v in shown.fields().items() if k in cls._plain} == {
        k: v for k, v in err.fields().items() if k in cls._plain
    }
    assert [t for t in texts(shown) if SECRET in t] == []
