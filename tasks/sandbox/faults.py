"""The sandbox's fault plan: scripted steps per operation, and random faults for chaos runs.

A script maps an operation (``contact/get``, ``message/sendSingle``, ``system/getApiVersion``,
or ``*`` for any) to steps, one per call, used up in order::

    503                       answer this status with Engage's error body; nothing is done
    "drop_before"             hang up without acting on the request
    "drop_after"              act on it (the SMS is sent), then hang up without answering
    "delay:0.5"               wait that long, then answer normally
    "redirect:302"            a proxy redirects to its login page (this sandbox's ``/login``);
    "redirect:307:<url>"      ... or to ``<url>``; any 3xx status; nothing is done
    "html" / "html:echo"      a proxy's 200 login page, ``echo`` quoting the request's identifier
    "echo:400"                answer this status with Engage's error body (a SOAP fault on SOAP)
                              whose message and ``value`` field quote what the request named: the
                              identifier on contact/get, the parameter values on a send
    "contact_id:<JSON>"       contact/get answers 200 with this contactId: ``contact_id:-5``,
                              ``contact_id:" 12 "``, ``contact_id:3.5``, ``contact_id:true``
    "truncated"               act, then answer 200 with the answer cut short (breaks the parser)
    "trickle" / "trickle:1.5" act (the SMS is sent), then write the answer one byte every 2 s (or
                              that many seconds): each read gets a byte, so no read timeout fires
    "retry_after:0"           answer 429 with this Retry-After value (``retry_after:past``: an
                              HTTP date an hour ago); nothing is done
    "gzip_bomb:400"           answer this status with a gzip body that inflates to 1 GiB of
    "gzip_bomb:400:64"        zeros (or that many MiB); nothing is done
    "tls_break"               act, then write a broken TLS record instead of the answer (a
                              TLS-inspecting proxy failing; served over TLS, see Sandbox(tls=))
    "empty:202"               act, then answer this status with an empty body
    "foreign_ns"              SOAP: act, then answer the operation's response element in a
                              namespace that is not Engage's
    "soap12_fault:Sender"     SOAP: a SOAP 1.2 fault (Sender: HTTP 400 with Engage's error
    "soap12_fault:Receiver"   detail; Receiver: HTTP 500, reason only); nothing is done

REST and SOAP read the same plan; each renders a fault in its own encoding.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

STATUS = "status"
DROP_BEFORE = "drop_before"
DROP_AFTER = "drop_after"
DELAY = "delay"
REDIRECT = "redirect"
HTML = "html"
CONTACT_ID = "contact_id"
TRUNCATED = "truncated"
ECHO = "echo"
TRICKLE = "trickle"
#: Seconds between two bytes of a trickled answer unless the step says otherwise.
TRICKLE_SECONDS = 2.0
RETRY_AFTER = "retry_after"
GZIP_BOMB = "gzip_bomb"
TLS_BREAK = "tls_break"
EMPTY = "empty"
FOREIGN_NS = "foreign_ns"
SOAP12_FAULT = "soap12_fault"
#: Steps that take the place of the operation: Engage (or a proxy) answers without acting.
INSTEAD = frozenset(
    {STATUS, DROP_BEFORE, REDIRECT, HTML, ECHO, RETRY_AFTER, GZIP_BOMB, SOAP12_FAULT}
)
#: Step kinds written as a bare word or ``kind:argument``.
_WORDS = frozenset(
    {
        DROP_BEFORE,
        DROP_AFTER,
        DELAY,
        REDIRECT,
        HTML,
        CONTACT_ID,
        TRUNCATED,
        ECHO,
        RETRY_AFTER,
        GZIP_BOMB,
        TLS_BREAK,
        EMPTY,
        FOREIGN_NS,
        SOAP12_FAULT,
        TRICKLE,
    }
)


@dataclass(frozen=True)
class Fault:
    """One scripted misbehaviour, read from its step."""

    kind: str
    #: STATUS, REDIRECT and ECHO: the HTTP status answered.
    status: int = 0
    #: DELAY and TRICKLE: seconds; REDIRECT: the Location ("" for this sandbox's /login);
    #: HTML: "echo" or ""; CONTACT_ID: the id as a JSON literal, written into the answer as it is.
    argument: str = ""

    @property
    def instead(self) -> bool:
        """The fault is answered instead of acting on the request."""
        return self.kind in INSTEAD


def parse_step(step: object) -> Fault:
    """The fault a script step stands for; ValueError for a step this sandbox does not know."""
    if isinstance(step, int) and not isinstance(step, bool):
        if not 100 <= step <= 599:
            raise ValueError(f"fault step {step!r} is not an HTTP status")
        return Fault(STATUS, status=step)
    if not isinstance(step, str):
        raise ValueError(f"unknown fault step {step!r}")
    kind, _, argument = step.partition(":")
    if kind not in _WORDS:
        raise ValueError(f"unknown fault step {step!r}")
    if kind in _STATUSES:
        return _with_status(kind, step, argument)
    if kind in (RETRY_AFTER, SOAP12_FAULT):
        return _answered(kind, step, argument)
    if kind in (DELAY, TRICKLE) and (kind == DELAY or argument):
        _check(step, argument, float, f"seconds: {kind}:0.5")
    elif kind == HTML:
        if argument not in ("", "echo"):
            raise ValueError(f"fault step {step!r}: the only option is html:echo")
    elif kind == CONTACT_ID:
        _check(step, argument, json.loads, 'one JSON value: contact_id:-5, contact_id:" 12 "')
    elif argument:
        raise ValueError(f"fault step {step!r} takes no argument")
    return Fault(kind, argument=argument)


def _answered(kind: str, step: str, argument: str) -> Fault:
    """A step whose status follows from its argument: a 429's Retry-After, a SOAP 1.2 code."""
    if kind == RETRY_AFTER:
        if not argument:
            raise ValueError(f"fault step {step!r} needs a value: retry_after:0")
        return Fault(kind, status=429, argument=argument)
    if argument not in ("Sender", "Receiver"):
        raise ValueError(f"fault step {step!r} needs Sender or Receiver")
    return Fault(kind, status=400 if argument == "Sender" else 500, argument=argument)


#: Steps that answer a status: the statuses each takes, and how the error says so.
_STATUSES = {
    REDIRECT: (300, 399, "a 3xx status: redirect:302"),
    ECHO: (400, 599, "an error status: echo:400"),
    GZIP_BOMB: (200, 599, "a status, then optionally MiB: gzip_bomb:400:64"),
    EMPTY: (200, 299, "a 2xx status: empty:202"),
}


def _with_status(kind: str, step: str, argument: str) -> Fault:
    code, _, rest = argument.partition(":")
    low, high, wanted = _STATUSES[kind]
    # A redirect takes more (its Location), a gzip bomb its size in MiB.
    extra_ok = kind == REDIRECT or (kind == GZIP_BOMB and (not rest or rest.isdigit()))
    if not (code.isdigit() and low <= int(code) <= high) or (rest and not extra_ok):
        raise ValueError(f"fault step {step!r} needs {wanted}")
    return Fault(kind, status=int(code), argument=rest)


def _check(step: str, argument: str, read: Callable[[str], object], wanted: str) -> None:
    try:
        read(argument)
    except ValueError:
        raise ValueError(f"fault step {step!r} needs {wanted}") from None


@dataclass
class RandomFaults:
    """Per-call probabilities of each fault, for chaos runs; ``seed`` makes them repeatable."""

    server_error: float = 0.0
    drop_before: float = 0.0
    drop_after: float = 0.0
    #: Act, then trickle the answer (one byte every ``trickle_seconds``): it outlives any lease.
    trickle: float = 0.0
    trickle_seconds: float = TRICKLE_SECONDS
    #: A proxy in front of Engage: a 302 to its login page, or its 200 HTML page.
    redirect: float = 0.0
    html: float = 0.0
    #: contact/get only: a contactId that is no positive 64-bit integer (one of BAD_CONTACT_IDS).
    bad_contact_id: float = 0.0
    latency_max: float = 0.0
    seed: int | None = None

    def pick(
        self, roll: float, operation: str, choose: Callable[[tuple[str, ...]], str]
    ) -> Fault | None:
        """The fault a roll in [0, 1) lands on, in the order of the fields above, or None."""
        for kind, share in (
            (STATUS, self.server_error),
            (DROP_BEFORE, self.drop_before),
            (DROP_AFTER, self.drop_after),
            (TRICKLE, self.trickle),
            (REDIRECT, self.redirect),
            (HTML, self.html),
            (CONTACT_ID, self.bad_contact_id if operation == "contact/get" else 0.0),
        ):
            if roll < share:
                if kind == TRICKLE:
                    return Fault(TRICKLE, argument=repr(self.trickle_seconds))
                return _random_fault(kind, choose)
            roll -= share
        return None


#: What a broken contact/get may answer as contactId, as JSON literals.
BAD_CONTACT_IDS = ("-5", "0", "1180591620717411303424", '" 12 "', "3.5", "true")


def _random_fault(kind: str, choose: Callable[[tuple[str, ...]], str]) -> Fault:
    if kind == STATUS:
        return Fault(STATUS, status=int(choose(("500", "502", "503"))))
    if kind == REDIRECT:
        return Fault(REDIRECT, status=302)
    if kind == CONTACT_ID:
        return Fault(CONTACT_ID, argument=choose(BAD_CONTACT_IDS))
    return Fault(kind)


@dataclass
class Faults:
    """Scripted and random misbehaviour."""

    script: dict[str, deque[Fault]] = field(default_factory=dict)
    latency: float = 0.0
    random: RandomFaults = field(default_factory=RandomFaults)

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Faults:
        """``{"script": {op: [503, "drop_after"]}, "latency": s, "random": {...}}``, checked."""
        script = {
            str(op): deque(parse_step(step) for step in steps)
            for op, steps in spec.get("script", {}).items()
        }
        return cls(
            script=script,
            latency=float(spec.get("latency", 0.0)),
            random=RandomFaults(**spec.get("random", {})),
        )
