"""The console's browser-facing defences: response headers, CSRF tokens and the Origin check.

Every console response carries a strict Content-Security-Policy (nothing but this origin's
own scripts, styles and images; no inline script or style; no framing), nosniff and
same-origin referrers. Every state-changing request must come from this origin (Origin, or
Sec-Fetch-Site when a browser sends no Origin) and carry the synchronizer token of the form
it was posted from: an HMAC, under a key of the server's, of the caller's session cookie, so
a token is worth nothing with any other session and cannot be made without the key.
Does not decide who is signed in (access.py does).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "font-src 'none'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HEADERS = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
)
CSRF_FIELD = "csrf"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class SecurityHeaders:
    """ASGI middleware adding HEADERS to every response of the app it wraps."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *HEADERS]
            await send(message)

        await self._app(scope, receive, with_headers)


def csrf_token(key: bytes, session: str) -> str:
    """The synchronizer token of one session (its cookie value)."""
    digest = hmac.new(key, b"console-csrf\0" + session.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def csrf_valid(key: bytes, session: str | None, presented: object) -> bool:
    """Whether `presented` is the token of `session` (constant-time)."""
    if not session or not isinstance(presented, str) or not presented:
        return False
    return hmac.compare_digest(csrf_token(key, session), presented)


def own_origin(request: Request) -> str:
    """The origin this request was addressed to, as a browser writes it in Origin."""
    return f"{request.url.scheme}://{request.headers.get('host', '')}"


def origin_of(url: str) -> str:
    """The origin (scheme://host[:port]) of a URL."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def same_origin(request: Request, public_origin: str = "") -> bool:
    """Whether a state-changing request comes from a page of this origin: the public URL's
    when one is configured (behind a TLS proxy the request itself says http), else the one
    the request was addressed to."""
    origin = request.headers.get("origin")
    if origin is not None:
        expected = public_origin or own_origin(request)
        return hmac.compare_digest(origin.encode(), expected.encode())
    return request.headers.get("sec-fetch-site") == "same-origin"
