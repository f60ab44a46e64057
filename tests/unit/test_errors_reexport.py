"""``tasks.errors``, where users catch the exceptions, names every class of tasks.core.errors."""

from __future__ import annotations

import inspect

import tasks.errors
from tasks.core import errors


def test_every_exception_class_of_core_is_importable_from_tasks_errors() -> None:
    """Each exception class defined in tasks.core.errors is the same object in tasks.errors."""
    defined = {
        name
        for name, value in vars(errors).items()
        if inspect.isclass(value)
        and issubclass(value, BaseException)
        and value.__module__ == errors.__name__
    }
    assert defined
    assert {name: getattr(tasks.errors, name, None) for name in defined} == {
        name: getattr(errors, name) for name in defined
    }
    assert set(tasks.errors.__all__) == defined
