"""The console as one mounted app: its route table, static assets and security headers.

`console_mount` is what the API mounts at /console. Every route is guarded (rendering.Pages)
except the sign-in routes and the static files; every response carries the security
headers (security.SecurityHeaders). Assets are files of this package: nothing is fetched
from anywhere else and nothing is built on the user's machine.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from mcp_ledger.console.access import ConsoleAccess
from mcp_ledger.console.deps import ConsoleDeps
from mcp_ledger.console.oauth import OAuthClient
from mcp_ledger.console.pages.audit import audit_routes
from mcp_ledger.console.pages.overview import overview_routes
from mcp_ledger.console.pages.plans import plans_routes
from mcp_ledger.console.pages.privacy import privacy_routes
from mcp_ledger.console.pages.registry import registry_routes
from mcp_ledger.console.pages.subjects import subjects_routes
from mcp_ledger.console.rendering import BASE, Pages
from mcp_ledger.console.security import SecurityHeaders, origin_of
from mcp_ledger.console.signin import signin_routes

PREFIX = BASE


def console_routes(
    pages: Pages, deps: ConsoleDeps, oauth: OAuthClient | None, public_url: str
) -> list[BaseRoute]:
    """Every route of the console, relative to its mount point."""
    return [
        *overview_routes(pages, deps),
        *audit_routes(pages, deps),
        *plans_routes(pages, deps),
        *subjects_routes(pages, deps),
        *registry_routes(pages, deps),
        *privacy_routes(pages, deps),
        *signin_routes(pages, oauth, public_url),
        Mount("/static", app=StaticFiles(packages=[("mcp_ledger.console", "static")]), name="static"),
    ]


def console_mount(
    deps: ConsoleDeps, access: ConsoleAccess, *, oauth: OAuthClient | None = None, public_url: str = ""
) -> Mount:
    """The console app mounted at /console."""
    pages = Pages(access, origin_of(public_url) if public_url else "")
    app = Starlette(routes=console_routes(pages, deps, oauth, public_url))
    return Mount(PREFIX, app=SecurityHeaders(app))
