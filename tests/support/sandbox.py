"""The local Engage sandbox for fixtures: served once, reset before each test that uses it."""

from __future__ import annotations

from collections.abc import Iterator

from tasks.sandbox import Sandbox, SandboxState


def serve(state: SandboxState | None = None, *, prefix: str | None = None) -> Iterator[Sandbox]:
    """Serve a sandbox until the fixture that yields from this ends (starting one costs ~0.5 s)."""
    state = state or SandboxState()
    with Sandbox(state) if prefix is None else Sandbox(state, prefix=prefix) as sandbox:
        yield sandbox


def fresh(sandbox: Sandbox) -> Sandbox:
    """``sandbox`` with its seed contacts and messages, and no calls, faults or changed login."""
    sandbox.state.reset()
    return sandbox
