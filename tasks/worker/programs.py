"""What a ``celery -A tasks`` program decides as its configuration is read, in Celery's signal.

Decided in :data:`app.on_after_configure <celery.Celery.on_after_configure>` (sent once, when
the configuration is first read), never at import, and from the command Celery's own command line
is running (click's context), never from ``sys.argv``:

- **Every celery program** (worker, beat, Flower, inspect...): a configuration error stops it
  with one line naming the variable, never a traceback out of Celery's option parsing.
- **Flower**, which shows and controls every task and worker, does not start without a login,
  and reads the broker through kombu's own transport (it lists queue lengths only for a broker
  URI of scheme ``redis://``; kombu names a transport given by path after the path).

A worker's own refusals (pools, foreign queues, no Engage settings) are made on
``celeryd_init``, from the options Celery parsed (:mod:`tasks.worker.startup`). Any other process
(a web app, ``engage-sms``) gets the ConfigurationError from
:func:`tasks.worker.app.engage_settings`.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from tasks.core.settings import basic_auth_problem
from tasks.worker.transport import TRANSPORT


def celery_program() -> str | None:
    """The ``celery`` subcommand this process runs (``worker``, ``beat``, ``flower``...) or None."""
    context = click.get_current_context(silent=True)
    if context is None:
        return None
    root = context.find_root()
    if root.command.name != "celery":
        return None
    return root.invoked_subcommand


def on_configured(sender: Any = None, source: Any = None, **_: Any) -> None:
    """Stop a celery program on a configuration error or an open Flower; Flower's transport."""
    program = celery_program()
    if program is None or source is None:
        return
    error = source.get("engage_settings_error")
    if error is not None:
        # A worker, beat or flower cannot start without it: one clear line, no traceback.
        sys.exit(f"engage-sms: configuration error: {error}")
    if program != "flower":
        return
    problem = flower_login_problem()
    if problem is not None:
        # Flower shows and controls every task and worker: it never starts open.
        sys.exit(f"engage-sms: Flower needs a login: {problem}")
    if source.get("broker_transport") == TRANSPORT:
        # Flower reads events and queue lengths, which kombu's own transport does the same way.
        source["broker_transport"] = None


def flower_login_problem() -> str | None:
    """In a Flower process: why it would serve its pages to anyone; None if it asks for a login."""
    # Flower has read its options (command line, FLOWER_* variables, flowerconfig.py) before it
    # reads the configuration, and opens its port only afterwards.
    from flower.options import options  # noqa: PLC0415  (imported by Flower processes only)

    if options.auth:
        return None  # OAuth: Flower's auth provider decides who gets in
    problem = basic_auth_problem(",".join(options.basic_auth or ()))
    return None if problem is None else f"FLOWER_BASIC_AUTH (or --basic-auth) {problem}"
