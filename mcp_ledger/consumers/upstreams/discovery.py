"""Discovery: page through an upstream's tools, resources, resource templates and prompts.

Follows nextCursor within bounds (pages and items), so a hostile or broken upstream cannot
keep a worker listing forever, and turns each definition into its wire form (the JSON the
upstream sent, `_meta` and icons kept) hashed over canonical JSON. A capability the server
does not offer is simply empty.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from mcp import Client
from mcp.shared.exceptions import MCPError
from pydantic import BaseModel

from mcp_ledger.consumers.tools import ToolExecutionError
from mcp_ledger.domain.upstreams.events import UpstreamCatalogRecorded, UpstreamDefinition

MAX_PAGES = 50
MAX_ITEMS = 2000

Page = tuple[Sequence[BaseModel], str | None]


async def _pages(fetch: Callable[[str | None], Awaitable[Page]], key: str) -> list[UpstreamDefinition]:
    found: list[UpstreamDefinition] = []
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        items, cursor = await fetch(cursor)
        for item in items:
            wire: dict[str, Any] = item.model_dump(mode="json", by_alias=True, exclude_none=True)
            found.append(UpstreamDefinition.of(str(wire.get(key, "")) or "?", wire))
        if len(found) > MAX_ITEMS:
            raise ToolExecutionError("upstream_catalog", f"more than {MAX_ITEMS} definitions in one list")
        if not cursor:
            return found
    raise ToolExecutionError("upstream_catalog", f"more than {MAX_PAGES} pages in one list")


async def _optional(
    fetch: Callable[[str | None], Awaitable[Page]], key: str, offered: bool
) -> list[UpstreamDefinition]:
    if not offered:
        return []
    try:
        return await _pages(fetch, key)
    except MCPError:  # offered but not answered (e.g. method not found): nothing to expose
        return []


async def discover(client: Client, server: str) -> UpstreamCatalogRecorded:
    """The upstream's catalog as an event.

    Raises:
        ToolExecutionError: listing tools failed or the lists are out of bounds.
    """
    capabilities = client.server_capabilities

    async def tools(cursor: str | None) -> Page:
        page = await client.list_tools(cursor=cursor, cache_mode="bypass")
        return page.tools, page.next_cursor

    async def resources(cursor: str | None) -> Page:
        page = await client.list_resources(cursor=cursor, cache_mode="bypass")
        return page.resources, page.next_cursor

    async def templates(cursor: str | None) -> Page:
        page = await client.list_resource_templates(cursor=cursor, cache_mode="bypass")
        return page.resource_templates, page.next_cursor

    async def prompts(cursor: str | None) -> Page:
        page = await client.list_prompts(cursor=cursor, cache_mode="bypass")
        return page.prompts, page.next_cursor

    try:
        found_tools = await _pages(tools, "name") if capabilities.tools is not None else []
    except MCPError as error:
        raise ToolExecutionError("upstream_catalog", f"tools/list failed: {error}") from None
    return UpstreamCatalogRecorded(
        server=server,
        protocol_version=client.protocol_version,
        tools=found_tools,
        resources=await _optional(resources, "uri", capabilities.resources is not None),
        resource_templates=await _optional(templates, "uriTemplate", capabilities.resources is not None),
        prompts=await _optional(prompts, "name", capabilities.prompts is not None),
    )
