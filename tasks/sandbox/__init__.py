"""A local stand-in for Mapp Engage: the two calls of a prepared send, with fault injection."""

from tasks.sandbox.server import Sandbox, SandboxHTTPServer
from tasks.sandbox.state import SandboxState

__all__ = ["Sandbox", "SandboxHTTPServer", "SandboxState"]
