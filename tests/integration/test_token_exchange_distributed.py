"""RFC 8693 token exchange on the real services (Kafka, PostgreSQL, Redis), API replicas and
workers as processes: the workers sign subject assertions with the deployment's key (the
key set printed by `mcp-ledger servers assertion-jwks` with the stack's settings), a real
authorization server in the test exchanges them for per-user tokens, and the fixture
upstream sees each subject as itself, never an agent's token; a refused exchange is a clear
tool error."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator

import pytest

from tests.support.clients import mcp_client, structured, text_of
from tests.support.distributed import DistributedStack
from tests.support.processes import run_ledger
from tests.support.token_server import LEAKY_DESCRIPTION, TokenServer, exchange_server
from tests.support.upstream import RunningUpstream, upstream_server

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]
SECRET = f"exchange-secret-{secrets.token_hex(8)}"


@pytest.fixture
async def upstream() -> AsyncIterator[RunningUpstream]:
    async with upstream_server() as running:
        yield running


@pytest.fixture
def tenant() -> str:
    return f"tx-{secrets.token_hex(5)}"


@pytest.fixture
async def authorization(
    shared_distributed_stack: DistributedStack, upstream: RunningUpstream, tenant: str
) -> AsyncIterator[TokenServer]:
    printed = await asyncio.to_thread(run_ledger, shared_distributed_stack.env, "servers", "assertion-jwks")
    jwks = json.loads(printed[printed.index("{") :])
    async with exchange_server(
        tenant=tenant, audience="fixture-api", issuer=jwks["issuer"], jwks=jwks, client_secret=SECRET
    ) as server:
        upstream.state.bearers = server.users
        yield server


async def test_each_subject_reaches_the_upstream_as_themselves_through_any_replica_and_worker(
    shared_distributed_stack: DistributedStack,
    upstream: RunningUpstream,
    authorization: TokenServer,
    tenant: str,
) -> None:
    stack = shared_distributed_stack
    admin = stack.token(tenant, "root", ("admin",))
    async with mcp_client(stack.urls[0], token=admin) as client:
        body = {"name": "fixture", "url": upstream.url, "prefix": "fx", "auth": authorization.auth()}
        structured(await client.call_tool("register_server", body))
    authorization.refused.add("mallory")
    seen: dict[str, str] = {}
    agent_tokens = [admin]
    for index, subject in enumerate(["alice", "bob", "alice", "mallory"]):
        agent = stack.token(tenant, subject, ("viewer",))
        agent_tokens.append(agent)
        async with mcp_client(stack.urls[index % 2], token=agent) as client:
            result = await client.call_tool("fx_whoami", {})
        seen[subject] = text_of(result)
        assert bool(result.is_error) == (subject == "mallory"), text_of(result)
    assert seen["alice"] == f"{tenant}/alice"
    assert seen["bob"] == f"{tenant}/bob"
    assert "upstream 'fixture': the authorization server refused the token exchange" in seen["mallory"]
    assert LEAKY_DESCRIPTION not in seen["mallory"]
    assert upstream.state.authorizations
    for agent in agent_tokens:
        assert not any(agent in value for value in upstream.state.authorizations)
        assert agent not in authorization.subject_tokens
