"""README: "MCP 2026-07-28 `requestState` is sealed the same way" as sealed state (AES-GCM,
bound to the subject and an expiry, at most 64 KB). Over raw HTTP against the embedded
gateway with auth on: a requestState that the gateway did not seal for this call, this caller
and this moment is refused with -32602 before any handler runs, and nothing is written.

The gateway's own tools never put state in an input_required result (the planner keeps its
round in the input key), so the one valid requestState here is minted the way the gateway's
boundary seals one: the SDK's envelope under the gateway's request-state key, bound to the
caller. It is the control that proves each refusal is the attack's doing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp.server.auth.provider import principal_components
from mcp.server.request_state import (
    AESGCMRequestStateCodec,
    _principal_claim,
    _request_identity,
    compact_json,
)

from mcp_ledger.crypto.sealed import MAX_SEALED_BYTES
from mcp_ledger.eventstore.sql import open_event_store
from mcp_ledger.mcp_api.http_app import tenant_bound_principal
from mcp_ledger.wiring.runtime import secret_key
from tests.support.embedded import RunningGateway, embedded_settings, gateway
from tests.support.tokens import good_token

PROTOCOL = "2026-07-28"
META = {
    "io.modelcontextprotocol/protocolVersion": PROTOCOL,
    "io.modelcontextprotocol/clientInfo": {"name": "claims", "version": "0"},
    "io.modelcontextprotocol/clientCapabilities": {},
}
HEADERS = {
    "accept": "application/json, text/event-stream",
    "content-type": "application/json",
    "mcp-protocol-version": PROTOCOL,
    "mcp-method": "tools/call",
    "mcp-name": "echo",
}
BOUNDARY_LOG = "mcp.server.request_state"


@pytest.fixture
async def secured(tmp_path: Path) -> AsyncIterator[RunningGateway]:
    async with gateway(embedded_settings(tmp_path, no_auth=False)) as running_gateway:
        yield running_gateway


def _token(gw: RunningGateway, sub: str = "alice", tenant: str = "acme") -> str:
    return good_token(gw.runtime.settings, sub=sub, tenant=tenant)


async def _principal(gw: RunningGateway, token: str) -> str:
    """The principal the gateway binds a requestState to, for this token."""
    assert gw.runtime.verifier is not None
    access = await gw.runtime.verifier.verify_token(token)
    assert access is not None
    assert access.claims is not None
    return tenant_bound_principal(compact_json(principal_components(access)), access.claims["tenant"])


def _mint(
    gw: RunningGateway,
    principal: str,
    *,
    text: str = "hello",
    issued_at: float | None = None,
    lifetime: float = 300.0,
    state: str = "round-1",
) -> str:
    """A requestState sealed as the gateway's boundary seals one, without its 64 KB limit."""
    issued = time.time() if issued_at is None else issued_at
    target, digest = _request_identity("tools/call", {"name": "echo", "arguments": {"text": text}})
    claims = {
        "v": 1,
        "iat": issued,
        "exp": issued + lifetime,
        "m": "tools/call",
        "t": target,
        "a": digest,
        "s": state,
        "aud": "mcp-ledger",
        "p": _principal_claim(principal),
    }
    codec = AESGCMRequestStateCodec([secret_key(gw.runtime.settings, "request-state/v1")])
    return codec.seal(compact_json(claims).encode())


async def _call(gw: RunningGateway, token: str, request_state: str, text: str = "hello") -> httpx.Response:
    params = {"name": "echo", "arguments": {"text": text}, "requestState": request_state, "_meta": META}
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}
    async with httpx.AsyncClient(timeout=10) as http:
        return await http.post(gw.url, json=body, headers={**HEADERS, "authorization": f"Bearer {token}"})


async def _stored(gw: RunningGateway) -> list[tuple[str, Any]]:
    """(event type, tool) of everything the gateway stored."""
    store = await open_event_store(gw.runtime.settings.store_url)
    try:
        return [(e.event_type, e.data.get("tool_name")) for e in await store.read_all()]
    finally:
        await store.close()


def _flip(token: str) -> str:
    middle = len(token) // 2
    return token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]


async def test_a_request_state_sealed_for_this_call_and_caller_is_accepted(secured: RunningGateway) -> None:
    token = _token(secured)
    response = await _call(secured, token, _mint(secured, await _principal(secured, token)))
    assert response.status_code == 200, response.text
    assert response.json()["result"]["structuredContent"] == {"text": "hello"}
    assert ("ToolSucceeded", "echo") in await _stored(secured)


@dataclass(frozen=True)
class Attack:
    """What the attacker sends (token, requestState, echo text) and the reason the boundary logs."""

    build: Callable[[RunningGateway], Awaitable[tuple[str, str, str]]]
    reasons: frozenset[str]


async def _tampered(gw: RunningGateway) -> tuple[str, str, str]:
    token = _token(gw)
    return token, _flip(_mint(gw, await _principal(gw, token))), "hello"


async def _truncated(gw: RunningGateway) -> tuple[str, str, str]:
    token = _token(gw)
    sealed = _mint(gw, await _principal(gw, token))
    return token, sealed[: len(sealed) // 2], "hello"


async def _foreign_subject(gw: RunningGateway) -> tuple[str, str, str]:
    alices = _mint(gw, await _principal(gw, _token(gw, sub="alice")))
    return _token(gw, sub="mallory"), alices, "hello"


async def _foreign_tenant(gw: RunningGateway) -> tuple[str, str, str]:
    # The same subject id in another tenant is another person.
    acme_alices = _mint(gw, await _principal(gw, _token(gw, tenant="acme")))
    return _token(gw, tenant="globex"), acme_alices, "hello"


async def _expired(gw: RunningGateway) -> tuple[str, str, str]:
    token = _token(gw)
    return token, _mint(gw, await _principal(gw, token), issued_at=time.time() - 900), "hello"


async def _oversized(gw: RunningGateway) -> tuple[str, str, str]:
    token = _token(gw)
    sealed = _mint(gw, await _principal(gw, token), state="x" * MAX_SEALED_BYTES)
    assert len(sealed) > MAX_SEALED_BYTES
    return token, sealed, "hello"


async def _another_call(gw: RunningGateway) -> tuple[str, str, str]:
    token = _token(gw)
    return token, _mint(gw, await _principal(gw, token), text="hello"), "something else"


async def _not_sealed(gw: RunningGateway) -> tuple[str, str, str]:
    return _token(gw), '{"round": 1, "admin": true}', "hello"


ATTACKS = {
    "tampered": Attack(_tampered, frozenset({"seal"})),
    "truncated": Attack(_truncated, frozenset({"seal", "malformed"})),
    "foreign_subject": Attack(_foreign_subject, frozenset({"principal"})),
    "foreign_tenant": Attack(_foreign_tenant, frozenset({"principal"})),
    "expired": Attack(_expired, frozenset({"expired"})),
    "over_64_kb": Attack(_oversized, frozenset({"request state over 64 KB"})),
    "sealed_for_another_call": Attack(_another_call, frozenset({"request binding"})),
    "not_sealed_at_all": Attack(_not_sealed, frozenset({"malformed"})),
}


@pytest.mark.parametrize("name", sorted(ATTACKS))
async def test_a_request_state_not_sealed_for_this_call_caller_and_moment_is_refused_and_nothing_runs(
    secured: RunningGateway, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    attack = ATTACKS[name]
    token, request_state, text = await attack.build(secured)
    with caplog.at_level(logging.WARNING, logger=BOUNDARY_LOG):
        response = await _call(secured, token, request_state, text)
    error = response.json()["error"]
    reasons = {r.getMessage().rpartition(": ")[2] for r in caplog.records if r.name == BOUNDARY_LOG}
    assert error["code"] == -32602
    assert error["message"] == "Invalid or expired requestState"
    assert reasons & attack.reasons, reasons
    assert await _stored(secured) == []
