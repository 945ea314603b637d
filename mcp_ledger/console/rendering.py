"""Pages and the guard every console route but sign-in and static files goes through.

Templates are Jinja2 with autoescaping on for every file, so recorded text (tool names,
plan ids, subjects: caller-influenced) is always escaped. The guard is the console's
authentication and authorisation in one place: protected by default, a route added to the
table gets it without anyone remembering to. It redirects anonymous GETs to the sign-in
page, answers 403 to callers without a console role (and to non-admins on admin routes),
and refuses a state-changing request from another origin or without its form's CSRF token.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from mcp_ledger.console.access import (
    PRE_COOKIE,
    TOKEN_COOKIE,
    ConsoleAccess,
    Viewer,
    new_pre_session,
    set_cookie,
)
from mcp_ledger.console.security import CSRF_FIELD, UNSAFE_METHODS, csrf_valid, same_origin

BASE = "/console"
MAX_FORM_BYTES = 64 * 1024
Handler = Callable[[Request, Viewer], Awaitable[Response]]
NAV = (
    ("overview", "Overview", "/"),
    ("audit", "Audit", "/audit"),
    ("plans", "Plans", "/plans"),
    ("subjects", "Sessions and subjects", "/subjects"),
    ("registry", "Registry", "/registry"),
    ("privacy", "Privacy", "/privacy"),
)


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("mcp_ledger.console", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(base=BASE, nav=NAV)
    env.filters["epoch"] = _epoch
    return env


def _epoch(seconds: float) -> str:
    """A recorded epoch time as UTC date and time."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")


class Pages:
    """Renders templates and guards handlers."""

    def __init__(self, access: ConsoleAccess, public_origin: str = "") -> None:
        self.access = access
        self._public_origin = public_origin
        self._env = _environment()

    def render(
        self, request: Request, template: str, viewer: Viewer | None, status: int = 200, **context: Any
    ) -> HTMLResponse:
        body = self._env.get_template(template).render(viewer=viewer, request=request, **context)
        return HTMLResponse(body, status_code=status, headers={"cache-control": "no-store"})

    def refuse(self, request: Request, viewer: Viewer | None, status: int, message: str) -> HTMLResponse:
        return self.render(request, "refused.html", viewer, status=status, message=message, page="")

    def guard(self, handler: Handler, *, admin: bool = False) -> Callable[[Request], Awaitable[Response]]:
        """The endpoint running `handler` for a signed-in caller allowed to see it."""

        async def endpoint(request: Request) -> Response:
            viewer = await self.access.viewer(request)
            if viewer is not None and viewer.local and not viewer.csrf:
                return self._with_pre_session(request)
            if viewer is None:
                if request.method in UNSAFE_METHODS:
                    return self.refuse(request, None, 401, "Sign in first.")
                return RedirectResponse(f"{BASE}/sign-in", status_code=303)
            if not viewer.may_read:
                roles = ", ".join(viewer.identity.roles) or "none"
                return self.refuse(
                    request, viewer, 403, f"The console needs the auditor or admin role (yours: {roles})."
                )
            if admin and not viewer.may_act:
                return self.refuse(request, viewer, 403, "This action needs the admin role.")
            if request.method in UNSAFE_METHODS:
                refusal = await self.check_form(request, self._session_of(request))
                if refusal is not None:
                    return self.refuse(request, viewer, 403, refusal)
            return await handler(request, viewer)

        return endpoint

    def _session_of(self, request: Request) -> str | None:
        if self.access.local:
            return request.cookies.get(PRE_COOKIE)
        return request.cookies.get(TOKEN_COOKIE)

    async def check_form(self, request: Request, session: str | None) -> str | None:
        """Why a state-changing request is refused (None: it may go on)."""
        if not same_origin(request, self._public_origin):
            return "Refused: the request did not come from a page of this console."
        length = request.headers.get("content-length", "")
        if not length.isdigit() or int(length) > MAX_FORM_BYTES:
            return "Refused: the form is missing its length or is too large."
        form = await request.form()
        if not csrf_valid(self.access.key, session, form.get(CSRF_FIELD)):
            return "Refused: the form's CSRF token is missing or wrong; reload the page and try again."
        return None

    def _with_pre_session(self, request: Request) -> Response:
        """Give a browser its pre-session cookie, then send it back where it was going."""
        target = request.url.path if request.method not in UNSAFE_METHODS else f"{BASE}/"
        response = RedirectResponse(target + (f"?{request.url.query}" if request.url.query else ""), 303)
        set_cookie(response, request, PRE_COOKIE, new_pre_session(), max_age=12 * 3600)
        return response
