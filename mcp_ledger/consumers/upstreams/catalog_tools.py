"""Runners of search_tools and select_tools: large catalogs without flooding the context.

search_tools scores every tool the caller may call in their scope (built-in, registered,
upstream) by the query's words in its name and description; select_tools records the
session's selection (SessionToolsSelected) that tools/list then applies.
"""

from __future__ import annotations

import re

from mcp_ledger.consumers.tools import ToolInvocation, ToolOutcome, ToolRunner, structured_outcome
from mcp_ledger.domain.access import access_problem
from mcp_ledger.domain.tools import ToolSpec
from mcp_ledger.domain.upstreams.events import SessionToolsSelected
from mcp_ledger.projections.registry.catalog import ToolCatalog

WORD = re.compile(r"[a-z0-9]+")


def score(spec: ToolSpec, words: set[str]) -> int:
    """How well a tool matches: a word in its name counts three, in its description one."""
    name = set(WORD.findall(spec.name.lower().replace("_", " ")))
    text = set(WORD.findall(f"{spec.title} {spec.description}".lower()))
    return sum(3 * (word in name) + (word in text) for word in words)


class CatalogTools:
    def __init__(self, catalog: ToolCatalog) -> None:
        self._catalog = catalog

    def runners(self) -> dict[str, ToolRunner]:
        return {"search_tools": self.search_tools, "select_tools": self.select_tools}

    async def search_tools(self, call: ToolInvocation) -> ToolOutcome:
        command = call.command
        words = set(WORD.findall(str(command.arguments["query"]).lower()))
        limit = int(command.arguments.get("limit", 20))
        specs = [
            spec
            for spec in await self._catalog.visible(command.tenant, command.session_id)
            if access_problem(command.roles, spec.minimum_role, spec.allowed_roles) is None
        ]
        ranked = sorted(((score(s, words), s.name, s) for s in specs), key=lambda t: (-t[0], t[1]))
        found = [
            {"name": spec.name, "title": spec.title, "description": spec.description[:300]}
            for points, _, spec in ranked[:limit]
            if points > 0
        ]
        return structured_outcome({"tools": found})

    async def select_tools(self, call: ToolInvocation) -> ToolOutcome:
        patterns = [str(p) for p in call.command.arguments["patterns"]]
        return structured_outcome({"patterns": patterns}, (SessionToolsSelected(patterns=patterns),))
