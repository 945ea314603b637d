"""The sign-in routes: paste a token (development), or the PKCE flow; and sign-out.

Without an authorization server configured, the sign-in page takes a token from
`mcp-ledger token`; with one, it sends the browser through the authorization code flow
(oauth.py) and offers no paste form. Either way the token is accepted only if the gateway's
verifier accepts it, and is then kept in the HttpOnly cookie until it expires.
"""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from mcp_ledger.console.access import (
    PRE_COOKIE,
    TOKEN_COOKIE,
    Viewer,
    clear_cookie,
    new_pre_session,
    secure_cookies,
    set_cookie,
)
from mcp_ledger.console.oauth import FLOW_COOKIE, FLOW_PATH, FLOW_SECONDS, OAuthClient, SignInError
from mcp_ledger.console.rendering import BASE, Pages

REFUSED = "The token was refused: it is forged, expired, or not issued for this gateway."


def _redirect_uri(request: Request, public_url: str) -> str:
    base = public_url.rstrip("/") or f"{request.url.scheme}://{request.headers.get('host', '')}"
    return f"{base}{FLOW_PATH}/callback"


def signin_routes(pages: Pages, oauth: OAuthClient | None, public_url: str) -> list[Route]:
    access = pages.access

    def form(request: Request, status: int = 200, error: str = "") -> Response:
        pre = request.cookies.get(PRE_COOKIE) or new_pre_session()
        response = pages.render(
            request,
            "signin.html",
            None,
            status=status,
            page="sign-in",
            csrf=access.csrf_for(pre),
            oauth=oauth is not None,
            error=error,
        )
        if PRE_COOKIE not in request.cookies:
            set_cookie(response, request, PRE_COOKIE, pre, max_age=12 * 3600)
        return response

    async def sign_in_page(request: Request) -> Response:
        if access.local:
            return RedirectResponse(f"{BASE}/", status_code=303)
        return form(request)

    async def sign_in(request: Request) -> Response:
        if access.local or oauth is not None:
            return pages.refuse(request, None, 405, "Tokens are not pasted here: use the sign-in button.")
        refusal = await pages.check_form(request, request.cookies.get(PRE_COOKIE))
        if refusal is not None:
            return form(request, 403, refusal)
        token = str((await request.form()).get("token", "")).strip()
        verified = await access.verify(token)
        if verified is None:
            return form(request, 401, REFUSED)
        return _signed_in(request, token, verified[1])

    async def sign_out(request: Request) -> Response:
        viewer = await access.viewer(request)
        session = request.cookies.get(TOKEN_COOKIE)
        if viewer is None or await pages.check_form(request, session) is not None:
            return pages.refuse(request, viewer, 403, "Refused: sign out from the console's own page.")
        response = RedirectResponse(f"{BASE}/sign-in", status_code=303)
        clear_cookie(response, request, TOKEN_COOKIE)
        return response

    async def oauth_start(request: Request) -> Response:
        if oauth is None:
            return RedirectResponse(f"{BASE}/sign-in", status_code=303)
        flow, cookie = oauth.new_flow()
        try:
            target = await oauth.authorize_url(flow, _redirect_uri(request, public_url))
        except SignInError as error:
            return form(request, 502, str(error))
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            FLOW_COOKIE,
            cookie,
            max_age=FLOW_SECONDS,
            path=FLOW_PATH,
            httponly=True,
            samesite="lax",
            secure=secure_cookies(request),
        )
        return response

    async def oauth_callback(request: Request) -> Response:
        if oauth is None:
            return RedirectResponse(f"{BASE}/sign-in", status_code=303)
        flow = oauth.flow_of(request.cookies.get(FLOW_COOKIE))
        if flow is None:
            return form(request, 400, "This sign-in expired or was not started in this browser; start again.")
        try:
            token = await oauth.exchange(request, flow, _redirect_uri(request, public_url))
        except SignInError as error:
            return form(request, 400, str(error))
        verified = await access.verify(token)
        if verified is None:
            return form(request, 401, REFUSED)
        # A page, not a redirect: the SameSite=Strict cookie is then sent by a same-site navigation.
        response = pages.render(request, "continue.html", None, page="sign-in")
        response.delete_cookie(
            FLOW_COOKIE, path=FLOW_PATH, httponly=True, samesite="lax", secure=secure_cookies(request)
        )
        set_cookie(response, request, TOKEN_COOKIE, token, max_age=max(1, verified[1] - int(time.time())))
        return response

    return [
        Route("/sign-in", sign_in_page, methods=["GET"]),
        Route("/sign-in", sign_in, methods=["POST"]),
        Route("/sign-out", sign_out, methods=["POST"]),
        Route("/oauth/start", oauth_start, methods=["GET"]),
        Route("/oauth/callback", oauth_callback, methods=["GET"]),
    ]


def _signed_in(request: Request, token: str, expires: int) -> Response:
    response = RedirectResponse(f"{BASE}/", status_code=303)
    set_cookie(response, request, TOKEN_COOKIE, token, max_age=max(1, expires - int(time.time())))
    return response


__all__ = ["Viewer", "signin_routes"]
