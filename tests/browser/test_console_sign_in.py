"""Signing in to the console with the authorization code flow and PKCE, in a real browser,
against a test authorization server on its own port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import BrowserContext, expect

from tests.support.authorization_server import AuthorizationServer, SignedInUser, authorization_server
from tests.support.console import base_of
from tests.support.embedded import RunningGateway, embedded_settings, gateway


@pytest.fixture
async def federated(tmp_path: Path) -> AsyncIterator[tuple[RunningGateway, AuthorizationServer]]:
    audience = embedded_settings(tmp_path).audience
    async with authorization_server(audience) as server:
        settings = embedded_settings(tmp_path / "gateway", no_auth=False).model_copy(
            update={
                "auth_jwks_url": f"{server.url}/jwks",
                "auth_issuer": server.url,
                "authorization_servers": [server.url],
            }
        )
        async with gateway(settings) as running:
            server.redirect_uris.add(f"{base_of(running.url)}/console/oauth/callback")
            yield running, server


async def test_an_auditor_signs_in_through_the_authorization_server_with_pkce(
    federated: tuple[RunningGateway, AuthorizationServer], browser: BrowserContext
) -> None:
    running, server = federated
    server.user = SignedInUser("acme", "audrey", ("auditor",))
    page = await browser.new_page()
    base = base_of(running.url)
    await page.goto(f"{base}/console/")
    assert page.url.endswith("/console/sign-in")
    await expect(page.get_by_label("Access token")).to_have_count(0)  # no paste form with a server
    await page.get_by_role("link", name="Sign in with the authorization server").click()
    await expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    await expect(page.locator(".who")).to_contain_text("audrey")
    await expect(page.locator(".who")).to_contain_text("auditor")
    [exchange] = server.token_requests
    assert exchange["grant_type"] == "authorization_code"
    assert len(exchange["code_verifier"]) >= 43
    [cookie] = [c for c in await browser.cookies() if c["name"] == "ledger_console"]
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert await page.evaluate("document.cookie") == ""  # nothing a script can read
