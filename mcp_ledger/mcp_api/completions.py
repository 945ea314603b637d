"""completion/complete: suggestions for prompt arguments and resource template variables.

Only values the caller may see are suggested: a session id completes from the caller's own
sessions (tenant and subject, from the session view), never anyone else's. Free-text arguments
(a goal) and the audit log's query variables get no suggestions: subjects, tools and
correlation ids of a tenant are not enumerated through completion. An unknown prompt, template
or argument is -32602, as the spec says servers should answer.
"""

from __future__ import annotations

import re

import mcp_types as types
from mcp.shared.exceptions import MCPError

from mcp_ledger.mcp_api.auth.identity import Identity
from mcp_ledger.mcp_api.prompts import PROMPTS
from mcp_ledger.projections.sessions.ports import SessionViewStore

MAX_VALUES = 100
"""The spec's limit on the values of one completion."""
SESSION_TEMPLATE = "ledger://sessions/{session_id}"
_EXPRESSION = re.compile(r"\{[+#./;?&]?([^}]*)\}")


def template_variables(uri_template: str) -> frozenset[str]:
    """The variable names of an RFC 6570 URI template (`{a}`, `{?b,c}`, ...)."""
    return frozenset(
        name.rstrip("*").split(":")[0]
        for expression in _EXPRESSION.findall(uri_template)
        for name in expression.split(",")
    )


class Completions:
    """Answers completion/complete from the caller's own data."""

    def __init__(self, views: SessionViewStore, templates: frozenset[str]) -> None:
        self._views = views
        self._templates = templates | {SESSION_TEMPLATE}

    async def complete(self, identity: Identity, params: types.CompleteRequestParams) -> types.CompleteResult:
        """Suggestions for one argument.

        Raises:
            MCPError: unknown prompt, template or argument (-32602).
        """
        ref, argument = params.ref, params.argument
        if isinstance(ref, types.PromptReference):
            prompt = next((p for p in PROMPTS if p.name == ref.name), None)
            if prompt is None:
                raise MCPError(types.INVALID_PARAMS, f"unknown prompt {ref.name!r}")
            if argument.name not in {a.name for a in prompt.arguments or []}:
                raise MCPError(types.INVALID_PARAMS, f"prompt {ref.name!r} has no argument {argument.name!r}")
        elif ref.uri not in self._templates:
            raise MCPError(types.INVALID_PARAMS, f"unknown resource template {ref.uri!r}")
        elif argument.name not in template_variables(ref.uri):
            raise MCPError(types.INVALID_PARAMS, f"template {ref.uri!r} has no variable {argument.name!r}")
        if argument.name != "session_id":
            return _completion([])
        sessions = await self._views.sessions_of(identity.tenant, identity.subject)
        return _completion(sorted(s for s in sessions if s.startswith(argument.value)))


def _completion(values: list[str]) -> types.CompleteResult:
    return types.CompleteResult(
        completion=types.Completion(
            values=values[:MAX_VALUES], total=len(values), has_more=len(values) > MAX_VALUES
        )
    )
