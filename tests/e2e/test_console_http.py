"""The console over plain HTTP: its headers, its CSRF and Origin refusals, sign-in refusals,
the PKCE state check, and tenant isolation acting as another tenant's admin."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mcp_ledger.console.security import CONTENT_SECURITY_POLICY
from mcp_ledger.domain.streams import subject_tag
from mcp_ledger.mcp_api.audit import AuditFilters
from mcp_ledger.mcp_api.auth.identity import Identity
from tests.support.authorization_server import AuthorizationServer, SignedInUser, authorization_server
from tests.support.clients import mcp_client
from tests.support.console import base_of, csrf_of, http_sign_in
from tests.support.embedded import RunningGateway, embedded_settings, gateway
from tests.support.tokens import good_token

PLAN = {"plan_id": "quarterly", "tasks": [{"id": "only", "tool_name": "echo", "parameters": {"text": "q"}}]}
PAGES = ("/console/", "/console/audit", "/console/plans", "/console/subjects", "/console/registry",
         "/console/privacy", "/console/audit/verify")  # fmt: skip


@pytest.fixture
async def secured(tmp_path: Path) -> AsyncIterator[RunningGateway]:
    async with gateway(embedded_settings(tmp_path, no_auth=False)) as running:
        yield running


def _client(running: RunningGateway) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base_of(running.url), timeout=30.0)


async def test_every_console_page_and_asset_carries_the_strict_content_security_policy(
    secured: RunningGateway,
) -> None:
    token = good_token(secured.runtime.settings, roles=("admin",))
    async with _client(secured) as client:
        await http_sign_in(client, token)
        answers = [
            await client.get(path) for path in (*PAGES, "/console/static/console.js", "/console/sign-in")
        ]
    for answer in answers:
        assert answer.status_code == 200, answer.request.url
        assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY
    for answer in answers:
        if answer.headers["content-type"].startswith("text/html"):
            assert "<script>" not in answer.text  # no inline script anywhere
            assert " style=" not in answer.text  # nor inline style
            assert not re.search(r'(src|href|action)="https?://', answer.text)  # nothing third-party


async def test_anonymous_callers_are_sent_to_sign_in_and_anonymous_posts_refused(
    secured: RunningGateway,
) -> None:
    async with _client(secured) as client:
        page = await client.get("/console/audit")
        post = await client.post("/console/privacy/erase", data={"subject": "x", "confirm": "x"})
        client.cookies.set("ledger_console", "not.a.token")
        forged = await client.get("/console/audit")
    assert page.status_code == 303
    assert page.headers["location"] == "/console/sign-in"
    assert post.status_code == 401
    assert forged.status_code == 303


async def test_a_post_without_the_csrf_token_or_from_another_origin_is_refused_and_erases_nothing(
    secured: RunningGateway,
) -> None:
    settings = secured.runtime.settings
    async with mcp_client(secured.url, token=good_token(settings, sub="vic", roles=())) as mcp:
        await mcp.call_tool("note_set", {"key": "k", "value": "v"})
    async with _client(secured) as client:
        await http_sign_in(client, good_token(settings, sub="ada", roles=("admin",)))
        page = await client.get("/console/privacy?subject=vic")
        csrf, origin = csrf_of(page.text), base_of(secured.url)
        form = {"subject": "vic", "confirm": "vic"}
        missing = await client.post("/console/privacy/erase", data=form, headers={"origin": origin})
        wrong = await client.post("/console/privacy/erase", data={**form, "csrf": csrf + "x"},
                                  headers={"origin": origin})  # fmt: skip
        elsewhere = await client.post("/console/privacy/erase", data={**form, "csrf": csrf},
                                      headers={"origin": "https://evil.example"})  # fmt: skip
        after = await client.get("/console/privacy?subject=vic")
        allowed = await client.post("/console/privacy/erase", data={**form, "csrf": csrf},
                                    headers={"origin": origin})  # fmt: skip
    for refused in (missing, wrong, elsewhere):
        assert refused.status_code == 403
    assert 'id="session-count">1<' in after.text
    assert allowed.status_code == 200
    assert "Completed" in allowed.text


async def test_another_tenants_admin_sees_nothing_of_this_tenant_and_erases_nothing_here(
    secured: RunningGateway,
) -> None:
    settings = secured.runtime.settings
    async with mcp_client(secured.url, token=good_token(settings, sub="alice", tenant="acme")) as mcp:
        await mcp.call_tool("echo", {"text": "acme secret"})
        await mcp.call_tool("note_set", {"key": "k", "value": "acme note"})
        await mcp.call_tool("create_plan", {"plan": PLAN, "execute": True})
    assert secured.runtime.audit is not None
    [call] = await secured.runtime.audit.search(
        "acme", AuditFilters(subject="alice", tool_name="echo", limit=1)
    )
    tag = subject_tag("alice")
    async with _client(secured) as other, _client(secured) as own:
        await http_sign_in(other, good_token(settings, sub="bert", tenant="globex", roles=("admin",)))
        await http_sign_in(own, good_token(settings, sub="ada", tenant="acme", roles=("admin",)))
        seen = {
            path: await other.get(path)
            for path in (
                "/console/audit?subject=alice", "/console/plans", "/console/subjects?subject=alice",
                "/console/privacy?subject=alice", "/console/registry", "/console/",
                f"/console/audit/calls/{call['correlation_id']}", f"/console/plans/{tag}/quarterly",
                "/console/audit/export?format=json", "/console/privacy/export?subject=alice",
            )
        }  # fmt: skip
        page = await other.get("/console/privacy?subject=alice")
        erase = {"subject": "alice", "confirm": "alice", "csrf": csrf_of(page.text)}
        await other.post("/console/privacy/erase", data=erase, headers={"origin": base_of(secured.url)})
        own_view = await own.get("/console/privacy?subject=alice")
        own_plan = await own.get(f"/console/plans/{tag}/quarterly")
    assert seen[f"/console/audit/calls/{call['correlation_id']}"].status_code == 404
    assert seen[f"/console/plans/{tag}/quarterly"].status_code == 404
    assert json.loads(seen["/console/audit/export?format=json"].text)["events"] == []
    assert json.loads(seen["/console/privacy/export?subject=alice"].text)["events"] == []
    assert 'id="session-count">0<' in seen["/console/privacy?subject=alice"].text
    assert 'id="plan-count">0<' in seen["/console/privacy?subject=alice"].text
    for path, answer in seen.items():
        assert "acme" not in answer.text.replace("mcp-ledger", ""), path
        assert "quarterly" not in answer.text or path.endswith("quarterly"), path
        assert call["correlation_id"] not in answer.text or "/calls/" in path, path
    assert 'id="session-count">1<' in own_view.text  # globex's erasure of "alice" was globex's own
    assert own_plan.status_code == 200


@pytest.fixture
async def federated(tmp_path: Path) -> AsyncIterator[tuple[RunningGateway, AuthorizationServer]]:
    async with authorization_server(embedded_settings(tmp_path).audience) as server:
        update = {"auth_jwks_url": f"{server.url}/jwks", "auth_issuer": server.url,
                  "authorization_servers": [server.url]}  # fmt: skip
        settings = embedded_settings(tmp_path / "gw", no_auth=False).model_copy(update=update)
        async with gateway(settings) as running:
            server.redirect_uris.add(f"{base_of(running.url)}/console/oauth/callback")
            yield running, server


async def test_a_pkce_callback_with_another_state_or_without_the_flow_cookie_is_refused(
    federated: tuple[RunningGateway, AuthorizationServer],
) -> None:
    running, server = federated
    server.user = SignedInUser("acme", "mallory", ("admin",))
    async with _client(running) as client:
        start = await client.get("/console/oauth/start")
        target = httpx.URL(start.headers["location"])
        sent = target.params
        code = (await client.get(str(target))).headers["location"].split("code=")[1].split("&")[0]
        wrong_state = await client.get(f"/console/oauth/callback?code={code}&state=not-{sent['state']}")
        client.cookies.clear()
        no_cookie = await client.get(f"/console/oauth/callback?code={code}&state={sent['state']}")
    assert sent["code_challenge_method"] == "S256"
    assert sent["client_id"] == "mcp-ledger-console"
    assert wrong_state.status_code == 400
    assert no_cookie.status_code == 400
    assert server.token_requests == []  # the code was never exchanged
    assert "ledger_console" not in {cookie for cookie in client.cookies}


async def test_paste_sign_in_is_not_offered_when_an_authorization_server_is_configured(
    federated: tuple[RunningGateway, AuthorizationServer],
) -> None:
    running, server = federated
    token = server.issuer.token("acme", "audrey", ("auditor",)) if server.issuer else ""
    async with _client(running) as client:
        page = await client.get("/console/sign-in")
        pasted = await client.post("/console/sign-in", data={"csrf": "x", "token": token},
                                   headers={"origin": base_of(running.url)})  # fmt: skip
    assert 'name="token"' not in page.text
    assert pasted.status_code == 405
    assert "ledger_console" not in pasted.headers.get("set-cookie", "")


async def test_a_plans_owner_cancels_it_from_the_console_and_no_one_else_can(secured: RunningGateway) -> None:
    settings = secured.runtime.settings
    slow = {"plan_id": "slow", "tasks": [{"id": "nap", "tool_name": "sleep", "parameters": {"ms": 20000}}]}
    owner_token = good_token(settings, sub="olga", roles=("admin",))
    async with mcp_client(secured.url, token=owner_token) as mcp:
        await mcp.call_tool("create_plan", {"plan": slow, "execute": True})
    path = f"/console/plans/{subject_tag('olga')}/slow"
    origin = base_of(secured.url)
    async with _client(secured) as owner, _client(secured) as peer:
        await http_sign_in(owner, owner_token)
        await http_sign_in(peer, good_token(settings, sub="pete", roles=("admin",)))
        peer_page = await peer.get(path)
        refused = await peer.post(f"{path}/cancel", data={"csrf": csrf_of(peer_page.text)},
                                  headers={"origin": origin})  # fmt: skip
        page = await owner.get(path)
        cancelled = await owner.post(
            f"{path}/cancel", data={"csrf": csrf_of(page.text)}, headers={"origin": origin}
        )
        for _ in range(100):  # bounded: the executor stops the running task
            status = (await owner.get(path)).text
            if 'data-state="cancelled"' in status:
                break
            await asyncio.sleep(0.1)
    assert "Cancel this plan" not in peer_page.text
    assert refused.status_code == 403
    assert cancelled.status_code == 303
    assert 'id="plan-status" class="state" data-state="cancelled"' in status


async def test_the_privacy_page_shows_the_retention_dry_run_and_the_export_opens_the_subjects_data(
    tmp_path: Path,
) -> None:
    settings = embedded_settings(tmp_path, no_auth=False).model_copy(
        update={"subject_retention_days": {"acme": 0}}
    )
    async with gateway(settings) as running:
        async with mcp_client(running.url, token=good_token(settings, sub="rita", roles=())) as mcp:
            await mcp.call_tool("echo", {"text": "rita's words"})
        async with _client(running) as admin:
            await http_sign_in(admin, good_token(settings, sub="ada", roles=("admin",)))
            page = await admin.get("/console/privacy")
            export = await admin.get("/console/privacy/export?subject=rita")
        async with _client(running) as auditor:
            await http_sign_in(auditor, good_token(settings, sub="audrey", roles=("auditor",)))
            refused = await auditor.get("/console/privacy/export?subject=rita")
    assert re.search(r"<td>rita</td><td>[0-9T:-]+</td><td>0 days</td>", page.text)
    bundle = json.loads(export.text)
    assert bundle["subject"] == "rita"
    assert "rita's words" in export.text  # the export opens what the audit log keeps sealed
    assert refused.status_code == 403


async def test_with_no_auth_on_loopback_the_local_user_is_an_admin_and_posts_still_need_their_token(
    tmp_path: Path,
) -> None:
    async with (
        gateway(embedded_settings(tmp_path)) as running,
        httpx.AsyncClient(base_url=base_of(running.url), follow_redirects=True) as client,
    ):
        bare = await client.get("/console")
        page = await client.get("/console/privacy?subject=nobody")
        origin = base_of(running.url)
        form = {"subject": "nobody", "confirm": "nobody"}
        refused = await client.post("/console/privacy/erase", data=form, headers={"origin": origin})
        allowed = await client.post(
            "/console/privacy/erase",
            data={**form, "csrf": csrf_of(page.text)},
            headers={"origin": origin},
        )
    assert bare.status_code == 200
    assert str(bare.url).endswith("/console/")
    assert "local-user" in page.text
    assert refused.status_code == 403
    assert allowed.status_code == 200
    assert "Completed" in allowed.text


class TenantUpstreams:
    """An UpstreamSource holding one tenant's servers and approvals (what federation fills in)."""

    def __init__(self, tenant: str) -> None:
        self.tenant = tenant
        self.decisions: list[tuple[str, str, str, bool]] = []

    async def servers(self, tenant: str) -> list[dict[str, Any]]:
        if tenant != self.tenant:
            return []
        return [{"name": "weather", "url": "https://weather.example/mcp", "health": "healthy",
                 "pinned": "v3", "tools": 4}]  # fmt: skip

    async def pending_approvals(self, tenant: str) -> list[dict[str, Any]]:
        if tenant != self.tenant:
            return []
        return [{"id": "ap-1", "server": "weather", "tool": "forecast", "hash": "ab" * 32,
                 "change": "new required argument"}]  # fmt: skip

    async def decide(
        self, identity: Identity, approval_id: str, approve: bool, hashes: dict[str, str]
    ) -> str:
        self.decisions.append((identity.tenant, identity.subject, approval_id, approve))
        return f"{'approved' if approve else 'rejected'} {approval_id}"


async def test_upstream_servers_and_pending_approvals_show_and_only_an_admin_decides(
    secured: RunningGateway,
) -> None:
    settings = secured.runtime.settings
    assert secured.runtime.console is not None
    upstreams = TenantUpstreams("acme")
    secured.runtime.console.upstreams = upstreams
    origin = base_of(secured.url)
    async with _client(secured) as admin, _client(secured) as auditor, _client(secured) as other:
        await http_sign_in(admin, good_token(settings, sub="ada", roles=("admin",)))
        await http_sign_in(auditor, good_token(settings, sub="audrey", roles=("auditor",)))
        await http_sign_in(other, good_token(settings, sub="carl", tenant="globex", roles=("admin",)))
        registry = await admin.get("/console/registry")
        overview = await admin.get("/console/")
        watching = await auditor.get("/console/registry")
        refused = await auditor.post("/console/registry/approvals/ap-1",
                                     data={"decision": "approve", "csrf": csrf_of(watching.text),
                                           "tool": "forecast", "hash": "ab" * 32},
                                     headers={"origin": origin})  # fmt: skip
        decided = await admin.post("/console/registry/approvals/ap-1",
                                   data={"decision": "reject", "csrf": csrf_of(registry.text),
                                         "tool": "forecast", "hash": "ab" * 32},
                                   headers={"origin": origin})  # fmt: skip
        foreign = await other.get("/console/registry")
    assert "weather.example" in registry.text
    assert "new required argument" in registry.text
    assert 'data-state="healthy"' in overview.text
    assert "Approve" not in watching.text
    assert "waiting for an admin" in watching.text
    assert refused.status_code == 403
    assert decided.status_code == 303
    assert "rejected+ap-1" in decided.headers["location"]
    assert upstreams.decisions == [("acme", "ada", "ap-1", False)]
    assert "weather" not in foreign.text


async def test_the_audit_log_pages_forward_and_the_chain_page_names_the_first_tampered_event(
    secured: RunningGateway,
) -> None:
    settings = secured.runtime.settings
    async with mcp_client(secured.url, token=good_token(settings, sub="paula", roles=())) as mcp:
        for number in range(30):
            await mcp.call_tool("echo", {"text": f"call {number}"})
    async with _client(secured) as auditor:
        await http_sign_in(auditor, good_token(settings, sub="audrey", roles=("auditor",)))
        first = await auditor.get("/console/audit?subject=paula")
        following = re.search(r'href="/console/audit\?([^"]+)" rel="next"', first.text)
        assert following is not None
        second = await auditor.get("/console/audit?" + following.group(1).replace("&amp;", "&"))
        intact = await auditor.get("/console/audit/verify")
        # Someone with the data directory edits one recorded event.
        with sqlite3.connect(settings.data_dir / "ledger.db") as db:
            db.execute("UPDATE events SET event_type = 'ToolFailed' WHERE position = 7")
        broken = await auditor.get("/console/audit/verify")
    positions = [int(p) for p in re.findall(r"<tr><td>(\d+)</td>", first.text + second.text)]
    assert len(positions) > 50
    assert positions == sorted(set(positions))  # the second page goes on where the first ended
    assert "Intact" in intact.text
    assert "Broken at position 7" in broken.text


async def test_behind_a_tls_proxy_posts_must_come_from_the_public_urls_origin(tmp_path: Path) -> None:
    settings = embedded_settings(tmp_path, no_auth=False).model_copy(
        update={"public_url": "https://ledger.example"}
    )
    public = "https://ledger.example"
    async with gateway(settings) as running, _client(running) as client:
        token = good_token(settings, sub="ada", roles=("admin",))
        direct = await http_sign_in(client, token)
        proxied = await http_sign_in(client, token, origin=public)
        page = await client.get("/console/privacy?subject=x")
        form = {"subject": "x", "csrf": csrf_of(page.text)}
        confirm = await client.post("/console/privacy/erase/confirm", data=form, headers={"origin": public})
        local = await client.post(
            "/console/privacy/erase/confirm", data=form, headers={"origin": base_of(running.url)}
        )
    assert direct.status_code == 403  # the request's own origin is not the public one
    assert proxied.status_code == 303
    assert confirm.status_code == 200
    assert local.status_code == 403


async def test_a_registered_tool_shows_with_its_version_and_history_and_sign_out_ends_the_session(
    tmp_path: Path,
) -> None:
    settings = embedded_settings(tmp_path, no_auth=False).model_copy(
        update={"registry_allowed_hosts": "pets.example"}
    )
    tool = {
        "name": "pet_by_id",
        "description": "One pet.",
        "input_schema": {"type": "object", "properties": {"petId": {"type": "integer"}}},
        "binding": {"kind": "http", "method": "GET", "base_url": "https://pets.example", "path": "/pets"},
    }
    async with gateway(settings) as running:
        admin_token = good_token(settings, sub="ada", roles=("admin",))
        async with mcp_client(running.url, token=admin_token) as mcp:
            await mcp.call_tool("register_tools", {"tools": [tool]})
            await mcp.call_tool("register_tools", {"tools": [{**tool, "description": "One pet, v2."}]})
        async with _client(running) as client:
            await http_sign_in(client, admin_token)
            registry = await client.get("/console/registry")
            out = await client.post("/console/sign-out", data={"csrf": csrf_of(registry.text)},
                                    headers={"origin": base_of(running.url)})  # fmt: skip
            after = await client.get("/console/registry")
    assert "<td>pet_by_id</td><td>2</td><td>http</td><td>One pet, v2.</td>" in registry.text
    assert re.search(r"<td>ToolRegistered</td><td>tenant</td><td>pet_by_id</td><td>ada</td>", registry.text)
    assert re.search(r"<td>ToolUpdated</td><td>tenant</td><td>pet_by_id</td><td>ada</td>", registry.text)
    assert out.status_code == 303
    assert 'ledger_console=""' in out.headers["set-cookie"]
    assert after.status_code == 303  # signed out: back to the sign-in page
