"""The web console in tests: signing in over plain HTTP, and Chromium driven by Playwright."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from playwright.async_api import BrowserContext, Page, async_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token of the first form on a page."""
    found = _CSRF.search(html)
    assert found is not None, "no form with a CSRF token on this page"
    return found.group(1)


def base_of(mcp_url: str) -> str:
    return mcp_url.removesuffix("/mcp")


async def http_sign_in(client: httpx.AsyncClient, token: str, origin: str = "") -> httpx.Response:
    """Sign the client in with a pasted token, as the sign-in form does (from `origin`, by
    default the client's base URL)."""
    page = await client.get("/console/sign-in")
    origin = origin or str(client.base_url).rstrip("/")
    return await client.post(
        "/console/sign-in", data={"csrf": csrf_of(page.text), "token": token}, headers={"origin": origin}
    )


@asynccontextmanager
async def chromium(profile: Path) -> AsyncIterator[BrowserContext]:
    """Debian's Chromium with a fresh profile (Playwright cannot download a browser here)."""
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield context
        finally:
            await context.close()


async def browser_sign_in(page: Page, base: str, token: str) -> None:
    """Paste a token into the sign-in form and submit it."""
    await page.goto(f"{base}/console/sign-in")
    await page.get_by_label("Access token").fill(token)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_load_state()
