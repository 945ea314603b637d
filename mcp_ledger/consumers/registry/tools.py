"""Runners of the registry's tools (register_tools, remove_tool, import_openapi,
connect_data_source): parse, fetch or reflect, then hand over to the RegistryWriter.

A refused registration is a ToolFailed with every problem listed; nothing is registered.
OpenAPI documents are fetched only from allowlisted endpoints (the host's addresses checked
and the connection pinned, as for tool calls), without redirects, size-capped, and parsed
as JSON or YAML within the caller-data bounds (checks/: nesting bounded, no YAML aliases,
large YAML off the event loop).
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from mcp_ledger.checks.documents import DocumentError, load_json
from mcp_ledger.checks.registrations import parse_definitions
from mcp_ledger.checks.yaml_documents import load_yaml
from mcp_ledger.consumers.bindings.egress import pinned
from mcp_ledger.consumers.registry.data_sources import ASYNC_DRIVERS, DataSourcePolicy, dsn_problem, reflect
from mcp_ledger.consumers.registry.dispatch import ToolTable, refusals, registry_scope
from mcp_ledger.consumers.registry.writer import RegistryWriter
from mcp_ledger.consumers.tools import (
    ToolExecutionError,
    ToolInvocation,
    ToolOutcome,
    structured_outcome,
)
from mcp_ledger.domain.registry.aggregate import DataSource
from mcp_ledger.domain.registry.data_sources import tools_for_tables
from mcp_ledger.domain.registry.openapi import OpenApiError, tools_from_openapi
from mcp_ledger.domain.registry.registration import endpoint_problem
from mcp_ledger.eventstore.ports import StoredEvent

MAX_DOCUMENT_BYTES = 2 * 1024 * 1024


def _summary(scope: str | None, version: int, appended: list[StoredEvent], key: str) -> ToolOutcome:
    names = [
        str(e.data["definition"]["name"]) if "definition" in e.data else str(e.data["name"])
        for e in appended
        if e.event_type in {"ToolRegistered", "ToolUpdated", "ToolRemoved"}
    ]
    return structured_outcome(
        {"scope": "tenant" if scope is None else "session", "version": version, key: names}
    )


def parse_document(text: str) -> dict[str, Any]:
    """An OpenAPI document from JSON or YAML text.

    Raises:
        OpenApiError: neither parses to an object (within the bounds), or it is too large.
    """
    try:
        parsed = load_json(text, max_bytes=MAX_DOCUMENT_BYTES, what="the document")
    except DocumentError:
        try:
            parsed = load_yaml(text, max_bytes=MAX_DOCUMENT_BYTES, what="the document")
        except DocumentError as error:
            raise OpenApiError(f"the document is neither JSON nor acceptable YAML: {error}") from None
    if not isinstance(parsed, dict):
        raise OpenApiError("the document must be a JSON or YAML object")
    return parsed


class RegistryTools(ToolTable):
    """The registry tools' runners, bound to a writer and the gateway's policies."""

    TOOLS = ("register_tools", "remove_tool", "import_openapi", "connect_data_source")

    def __init__(
        self,
        writer: RegistryWriter,
        allowed_hosts: tuple[str, ...],
        data_sources: DataSourcePolicy,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._writer = writer
        self._allowed_hosts = allowed_hosts
        self._data_sources = data_sources
        self._transport = transport

    async def register_tools(self, call: ToolInvocation) -> ToolOutcome:
        scope = registry_scope(call)
        with refusals():
            definitions = parse_definitions(call.command.arguments["tools"])
            version, appended = await self._writer.register(call.command, scope, definitions)
        return _summary(scope, version, appended, "registered")

    async def remove_tool(self, call: ToolInvocation) -> ToolOutcome:
        scope = registry_scope(call)
        with refusals():
            version, appended = await self._writer.remove(
                call.command, scope, [call.command.arguments["name"]]
            )
        return _summary(scope, version, appended, "removed")

    async def _fetch(self, url: str) -> str:
        problem = endpoint_problem(url, self._allowed_hosts)
        if problem is not None:
            raise ToolExecutionError("registration_refused", problem)
        target, headers, extensions = await pinned(url, self._allowed_hosts)
        async with httpx.AsyncClient(
            follow_redirects=False, timeout=10.0, transport=self._transport
        ) as client:
            try:
                async with client.stream("GET", target, headers=headers, extensions=extensions) as response:
                    if response.status_code != 200:
                        raise ToolExecutionError("fetch_failed", f"GET {url}: HTTP {response.status_code}")
                    chunks, size = [], 0
                    async for chunk in response.aiter_bytes():
                        size += len(chunk)
                        if size > MAX_DOCUMENT_BYTES:
                            raise ToolExecutionError("fetch_failed", "the document is larger than 2 MiB")
                        chunks.append(chunk)
            except httpx.HTTPError as error:
                raise ToolExecutionError("fetch_failed", f"GET {url}: {error!r}") from None
        return b"".join(chunks).decode(errors="replace")

    async def import_openapi(self, call: ToolInvocation) -> ToolOutcome:
        arguments = call.command.arguments
        raw = arguments.get("document")
        if raw is None and "url" not in arguments:
            raise ToolExecutionError("invalid_arguments", "give the document inline or its url")
        with refusals():
            if raw is None:
                raw = await self._fetch(str(arguments["url"]))
            # Up to 2 MiB of YAML is a second of parsing: off the event loop.
            document = await asyncio.to_thread(parse_document, raw) if isinstance(raw, str) else raw
            definitions = tools_from_openapi(
                document, base_url=arguments.get("base_url"), prefix=arguments.get("prefix", "")
            )
            version, appended = await self._writer.register(call.command, None, definitions)
        return _summary(None, version, appended, "registered")

    async def connect_data_source(self, call: ToolInvocation) -> ToolOutcome:
        arguments = call.command.arguments
        dsn = str(arguments["dsn"])
        problem = dsn_problem(dsn, self._data_sources)
        if problem is not None:
            raise ToolExecutionError("data_source_refused", problem)
        shapes = await reflect(dsn, arguments.get("schema"), arguments.get("tables"))
        definitions = tools_for_tables(arguments["name"], shapes, writes=bool(arguments.get("writes", True)))
        if not definitions:
            raise ToolExecutionError("data_source_empty", "no usable tables found")
        dialect = ASYNC_DRIVERS[dsn.split("://", 1)[0]]
        source = DataSource(arguments["name"], dialect, dsn, tuple(sorted({s.name for s in shapes})))
        with refusals():
            version, appended = await self._writer.connect(call.command, source, definitions)
        return _summary(call.command.session_id, version, appended, "registered")
