"""The operator console at ``/console``: dead letters by reason, an entry's detail and timeline,
replay one, replay or purge all of a reason after typing the count shown.

Server-rendered (Jinja2, no script, no build step). Only ``operate`` tokens log in. Every change
is a POST carrying the session's CSRF token; a GET changes nothing. Replaying ``outcome_unknown``
(the SMS may have gone out already) needs an extra tick. Every value shown comes masked from the
stores (``dlq show``'s masking); no page carries a phone number, an e-mail address or a
parameter value.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from tasks.api import replay_dead_letter
from tasks.core.errors import Rebuildable
from tasks.http.services import HttpServices
from tasks.http.sessions import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    SESSION_SECONDS,
    Session,
    new_login_nonce,
    same_secret,
)
from tasks.http.timeline import timeline
from tasks.http.tokens import Scope, Token
from tasks.state.enums import Reason

#: Entries listed on one page.
PAGE = 200
TEMPLATES = Jinja2Templates(directory=str(Path(__file__).with_name("templates")))
#: Pages are self-contained: no script, no outside resource, never framed, never cached.
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}
ACTIONS = ("replay", "purge")
UNKNOWN = Reason.OUTCOME_UNKNOWN.value


class LoginRequired(Rebuildable):
    """No valid session: the answer is the login page."""


class CsrfRefused(Rebuildable):
    """A form came without the session's CSRF token (or with a wrong one)."""


class Pages:
    """What every console route needs: the services, the page renderer, the session checks."""

    def __init__(self, services: Callable[[], HttpServices]) -> None:
        self.services = services

    def page(self, request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        """Render template ``name`` with the console's headers."""
        return TEMPLATES.TemplateResponse(
            request, name, context, status_code=status, headers=HEADERS
        )

    def logged_in(self, request: Request) -> tuple[HttpServices, Session, Token]:
        """The services, session and token of a logged-in operator; else LoginRequired."""
        s = self.services()
        session = s.sessions.get(request.cookies.get(SESSION_COOKIE))
        token = None if session is None else s.tokens.get(session.token_id)
        if session is None or token is None or not token.allows(Scope.OPERATE):
            raise LoginRequired
        return s, session, token

    def checked(self, request: Request, csrf: str | None) -> tuple[HttpServices, Session, Token]:
        """As :meth:`logged_in`, for a form: CsrfRefused unless it carries the CSRF token."""
        s, session, token = self.logged_in(request)
        if not same_secret(session.csrf, csrf):
            raise CsrfRefused
        return s, session, token


def console_router(services: Callable[[], HttpServices]) -> APIRouter:
    """The console's routes on the services ``services()`` returns."""
    router = APIRouter(prefix="/console", include_in_schema=False)
    pages = Pages(services)
    _login_routes(router, pages)
    _browse_routes(router, pages)
    _action_routes(router, pages)
    return router


def _login_routes(router: APIRouter, pages: Pages) -> None:
    page, checked, services = pages.page, pages.checked, pages.services

    @router.get("")
    def home() -> RedirectResponse:
        return RedirectResponse("/console/dead-letters", status_code=303)

    @router.get("/login")
    def login_form(request: Request) -> HTMLResponse:
        nonce = new_login_nonce()
        response = page(request, "login.html", csrf=nonce)
        set_cookie(request, response, LOGIN_COOKIE, nonce, max_age=3600)
        return response

    @router.post("/login")
    def login(
        request: Request,
        token: Annotated[str, Form()] = "",
        csrf: Annotated[str, Form()] = "",
    ) -> Response:
        if not same_secret(request.cookies.get(LOGIN_COOKIE, ""), csrf) or not csrf:
            raise CsrfRefused
        s = services()
        found = s.tokens.authenticate(token.strip())
        if found is None or not found.allows(Scope.OPERATE):
            nonce = new_login_nonce()
            response = page(
                request,
                "login.html",
                status=401,
                problem="That token is unknown, revoked, or not of scope operate.",
                csrf=nonce,
            )
            set_cookie(request, response, LOGIN_COOKIE, nonce, max_age=3600)
            return response
        redirect = RedirectResponse("/console/dead-letters", status_code=303)
        set_cookie(request, redirect, SESSION_COOKIE, s.sessions.open(found.id), SESSION_SECONDS)
        redirect.delete_cookie(LOGIN_COOKIE, path="/console")
        return redirect

    @router.post("/logout")
    def logout(request: Request, csrf: Annotated[str, Form()] = "") -> RedirectResponse:
        s, _, _ = checked(request, csrf)
        s.sessions.close(request.cookies.get(SESSION_COOKIE))
        redirect = RedirectResponse("/console/login", status_code=303)
        redirect.delete_cookie(SESSION_COOKIE, path="/console")
        return redirect


def _browse_routes(router: APIRouter, pages: Pages) -> None:
    page, logged_in = pages.page, pages.logged_in

    @router.get("/dead-letters")
    def dead_letters(request: Request, reason: str = "", prefix: str = "") -> HTMLResponse:
        s, session, token = logged_in(request)
        store = s.runtime.dead_letters
        depth = store.depth_by_reason()
        keys = [k for k in store.keys(reason or None) if k.startswith(prefix)]
        entries = [e for e in (store.get(k) for k in keys[:PAGE]) if e is not None]
        return page(
            request,
            "dead_letters.html",
            csrf=session.csrf,
            operator=token.name,
            depth=sorted(depth.items(), key=lambda item: (-item[1], item[0])),
            total=sum(depth.values()),
            reasons=[r.value for r in Reason],
            reason=reason,
            prefix=prefix,
            entries=entries,
            matching=len(keys),
            shown=len(entries),
            quote=quote,
        )

    @router.get("/dead-letters/{key:path}")
    def entry(request: Request, key: str) -> HTMLResponse:
        s, session, token = logged_in(request)
        found = s.runtime.dead_letters.get(key)
        if found is None:
            return RedirectResponse(f"/console/sends/{quote(key, safe='')}", status_code=303)  # type: ignore[return-value]
        status = s.runtime.ledger.status(key)
        return page(
            request,
            "entry.html",
            csrf=session.csrf,
            operator=token.name,
            entry=found,
            detail=json.dumps(found, indent=2),
            events=timeline(status, found, s.audit.actions(key), s.runtime.attempts.history(key)),
            unknown=found["reason"] == UNKNOWN,
        )

    @router.get("/sends/{key:path}")
    def send(request: Request, key: str) -> HTMLResponse:
        s, session, token = logged_in(request)
        status = s.runtime.ledger.status(key)
        found = s.runtime.dead_letters.get(key)
        return page(
            request,
            "send.html",
            status=404 if status["state"] == "unknown" else 200,
            csrf=session.csrf,
            operator=token.name,
            key=key,
            send=status,
            detail=json.dumps(status, indent=2),
            events=timeline(status, found, s.audit.actions(key), s.runtime.attempts.history(key)),
            entry=found,
            quote=quote,
        )


def _action_routes(router: APIRouter, pages: Pages) -> None:
    page, logged_in, checked = pages.page, pages.logged_in, pages.checked

    @router.post("/replay")
    def replay_one(
        request: Request,
        key: Annotated[str, Form()],
        csrf: Annotated[str, Form()] = "",
        confirm_unknown: Annotated[str, Form()] = "",
    ) -> Response:
        s, session, token = checked(request, csrf)
        found = s.runtime.dead_letters.get(key)
        if found is not None and found["reason"] == UNKNOWN and confirm_unknown != "yes":
            return page(
                request,
                "message.html",
                status=409,
                csrf=session.csrf,
                operator=token.name,
                title="Not replayed",
                text="This send's outcome is unknown: Engage may have sent it already. Tick "
                "the box to confirm that a second SMS is acceptable.",
                back=f"/console/dead-letters/{quote(key, safe='')}",
            )
        outcome = replay_dead_letter(key)
        s.audit.record(key, "replay", token.name, _replayed(outcome, found))
        return RedirectResponse(f"/console/sends/{quote(key, safe='')}", status_code=303)

    @router.get("/batch/{action}")
    def batch_form(request: Request, action: str, reason: str) -> HTMLResponse:
        s, session, token = logged_in(request)
        if action not in ACTIONS or reason not in {r.value for r in Reason}:
            return page(
                request,
                "message.html",
                status=404,
                csrf=session.csrf,
                operator=token.name,
                title="No such batch",
                text="",
                back="/console",
            )
        keys = s.runtime.dead_letters.keys(reason)
        return page(
            request,
            "confirm.html",
            csrf=session.csrf,
            operator=token.name,
            action=action,
            reason=reason,
            count=len(keys),
            snapshot=snapshot(keys),
            unknown=reason == UNKNOWN and action == "replay",
        )

    @router.post("/batch/{action}")
    def batch(
        request: Request,
        action: str,
        *,
        reason: Annotated[str, Form()],
        typed: Annotated[str, Form()] = "",
        seen: Annotated[str, Form()] = "",
        csrf: Annotated[str, Form()] = "",
        confirm_unknown: Annotated[str, Form()] = "",
    ) -> Response:
        s, session, token = checked(request, csrf)
        keys = s.runtime.dead_letters.keys(reason) if action in ACTIONS else []
        problem = None
        if action not in ACTIONS or not keys:
            problem = "Nothing to do: no entries of that reason."
        elif snapshot(keys) != seen:
            problem = "The entries changed since the count was shown: look at them again."
        elif typed.strip() != str(len(keys)):
            problem = f"Type the count shown ({len(keys)}) to confirm."
        elif action == "replay" and reason == UNKNOWN and confirm_unknown != "yes":
            problem = "Replaying outcome_unknown may send second SMS: tick the box to confirm."
        if problem is not None:
            return page(
                request,
                "message.html",
                status=409,
                csrf=session.csrf,
                operator=token.name,
                title="Nothing changed",
                text=problem,
                back=f"/console/batch/{action}?reason={quote(reason)}",
            )
        if action == "purge":
            done = s.runtime.dead_letters.remove(keys)
            for key in keys:
                s.audit.record(key, "purge", token.name, "purged")
            text = f"Purged {_entries(done)} of {reason}."
        else:
            outcomes: dict[str, int] = {}
            for key in keys:
                found = s.runtime.dead_letters.get(key)
                outcome = replay_dead_letter(key)
                s.audit.record(key, "replay", token.name, _replayed(outcome, found))
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
            text = f"Replayed {_entries(len(keys))} of {reason}: " + ", ".join(
                f"{name} {n}" for name, n in sorted(outcomes.items())
            )
        return page(
            request,
            "message.html",
            csrf=session.csrf,
            operator=token.name,
            title="Done",
            text=text,
            back="/console/dead-letters",
        )


def _replayed(outcome: str, entry: dict[str, Any] | None) -> str:
    """What the audit log keeps of a replay: the outcome and the entry it took out."""
    if entry is None:
        return outcome
    return f"{outcome} (was {entry['reason']} since {entry['last_failure_at']})"


def _entries(count: int) -> str:
    return f"{count} {'entry' if count == 1 else 'entries'}"


def snapshot(keys: list[str]) -> str:
    """A digest of exactly these entries: the batch acts only on what the operator was shown."""
    return hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()[:32]


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    """A console cookie: HttpOnly, SameSite=Strict, Secure over HTTPS, for /console only."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/console",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def console_errors() -> dict[type[Exception], Callable[..., Any]]:
    """Exception handlers of the console: login page, 403 without CSRF, 503 without Redis."""

    def login(request: Request, _: Exception) -> Response:
        return RedirectResponse("/console/login", status_code=303)

    def csrf(request: Request, _: Exception) -> Response:
        return HTMLResponse(
            "<!doctype html><title>Refused</title><p>Refused: this form came without the "
            "console's CSRF token. Reload the page and try again.</p>",
            status_code=403,
            headers=HEADERS,
        )

    return {LoginRequired: login, CsrfRefused: csrf}


def unavailable_page(service: str) -> Response:
    """Redis or the broker did not answer while a console page was built."""
    return HTMLResponse(
        f"<!doctype html><title>Unavailable</title><p>{service} did not answer. Nothing was "
        "changed; try again shortly.</p>",
        status_code=503,
        headers={**HEADERS, "Retry-After": "5"},
    )
