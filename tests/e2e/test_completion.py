"""completion/complete over HTTP with the SDK client, on a gateway with auth on.

A session id completes from the caller's own sessions: another subject's never show, whatever
the prefix. Unknown prompts, templates and arguments are -32602; free text and the audit log's
query variables get no suggestions.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError

from mcp_ledger.mcp_api.completions import SESSION_TEMPLATE, template_variables
from tests.support.clients import mcp_client, structured
from tests.support.embedded import RunningGateway, embedded_settings, gateway
from tests.support.tokens import good_token

RESUME = types.PromptReference(type="ref/prompt", name="resume_session")
SESSION = types.ResourceTemplateReference(type="ref/resource", uri=SESSION_TEMPLATE)


@pytest.fixture
async def secured(tmp_path: Path) -> AsyncIterator[RunningGateway]:
    async with gateway(embedded_settings(tmp_path, no_auth=False)) as running:
        yield running


async def _sessions(gw: RunningGateway, subject: str, count: int) -> list[str]:
    token = good_token(gw.runtime.settings, sub=subject)
    async with mcp_client(gw.url, mode="2026-07-28", token=token) as client:
        return [
            str(structured(await client.call_tool("session_open", {}))["session_id"]) for _ in range(count)
        ]


async def _complete(
    gw: RunningGateway,
    subject: str,
    ref: types.PromptReference | types.ResourceTemplateReference,
    name: str,
    value: str,
) -> list[str]:
    async with mcp_client(
        gw.url, mode="2026-07-28", token=good_token(gw.runtime.settings, sub=subject)
    ) as client:
        result = await client.complete(ref, {"name": name, "value": value})
    assert result.completion.total == len(result.completion.values)
    return result.completion.values


async def test_a_session_id_completes_from_the_callers_own_sessions_only(secured: RunningGateway) -> None:
    alice, bob = await _sessions(secured, "alice", 2), await _sessions(secured, "bob", 1)
    assert sorted(await _complete(secured, "alice", RESUME, "session_id", "")) == sorted(alice)
    assert await _complete(secured, "alice", SESSION, "session_id", alice[0][:12]) == [alice[0]]
    assert await _complete(secured, "alice", RESUME, "session_id", bob[0]) == []
    assert await _complete(secured, "bob", SESSION, "session_id", "") == bob


async def test_free_text_and_audit_query_variables_get_no_suggestions(secured: RunningGateway) -> None:
    await _sessions(secured, "alice", 1)
    goal = types.PromptReference(type="ref/prompt", name="plan_goal")
    audit = types.ResourceTemplateReference(
        type="ref/resource", uri="ledger://audit{?subject,tool,correlation_id,since,until,limit}"
    )
    assert await _complete(secured, "alice", goal, "goal", "") == []
    assert await _complete(secured, "alice", audit, "subject", "") == []


@pytest.mark.parametrize(
    ("ref", "argument"),
    [
        (types.PromptReference(type="ref/prompt", name="no_such_prompt"), "arg1"),
        (RESUME, "no_such_argument"),
        (types.ResourceTemplateReference(type="ref/resource", uri="test://template/{id}/data"), "id"),
        (SESSION, "no_such_variable"),
    ],
)
async def test_an_unknown_prompt_template_or_argument_is_invalid_params(
    secured: RunningGateway, ref: types.PromptReference | types.ResourceTemplateReference, argument: str
) -> None:
    token = good_token(secured.runtime.settings, sub="alice")
    async with mcp_client(secured.url, mode="2026-07-28", token=token) as client:
        with pytest.raises(MCPError) as refused:
            await client.complete(ref, {"name": argument, "value": ""})
    assert refused.value.error.code == types.INVALID_PARAMS


def test_template_variables_are_read_from_every_kind_of_expression() -> None:
    assert template_variables("ledger://audit{?subject,tool}") == {"subject", "tool"}
    assert template_variables("x://{a}/{+b}{/c*}{#d:3}") == {"a", "b", "c", "d"}
