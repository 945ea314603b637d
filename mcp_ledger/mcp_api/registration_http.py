"""The registration API over plain HTTP: POST /v1/tools and GET /v1/capabilities.

The HTTP mapping of MCPToolService's RegisterTool and ListCapabilities. POST validates the
definitions at the edge (400 with every problem, nothing published), then sends the same
register_tools command an MCP client would, so the worker decides with the same rules and
roles (403 without the registering role, 422 when the worker refuses). Identity comes from
an IdentityResolver, so JWT authentication plugs in without changing this module.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from mcp_ledger.domain.commands import CallTool
from mcp_ledger.domain.registration import RegistrationError, RegistrationPolicy
from mcp_ledger.mcp_api.gateway import CommandGateway, CommandTimeoutError
from mcp_ledger.mcp_api.identity import BadSessionHeaderError, IdentityResolver, session_from_headers
from mcp_ledger.producers.ports import BusError
from mcp_ledger.projections.catalog import ToolCatalog
from mcp_ledger.projections.ports import SessionViewStore
from mcp_ledger.registration_check import check_registration, parse_definitions

MAX_BODY_BYTES = 1024 * 1024


def _problem(status: int, title: str, problems: list[str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"title": title}
    if problems:
        body["problems"] = problems
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


class RegistrationHttp:
    """Starlette routes for tool registration and capability listing."""

    def __init__(
        self,
        gateway: CommandGateway,
        catalog: ToolCatalog,
        views: SessionViewStore,
        identities: IdentityResolver,
    ) -> None:
        self._gateway = gateway
        self._catalog = catalog
        self._views = views
        self._identities = identities

    def routes(self) -> list[Route]:
        return [
            Route("/v1/tools", self.register_tools, methods=["POST"]),
            Route("/v1/capabilities", self.capabilities, methods=["GET"]),
        ]

    async def register_tools(self, request: Request) -> JSONResponse:
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return _problem(413, f"the request is larger than {MAX_BODY_BYTES} bytes")
        try:
            payload = json.loads(body)
            tools = payload["tools"]
            # Edge check without the allowlist (the worker holds it): structure and schemas only.
            check_registration(parse_definitions(tools), RegistrationPolicy(allowed_hosts=("*",)))
        except RegistrationError as error:  # a ValueError too: caught first
            return _problem(400, "invalid tool definitions", error.problems)
        except (ValueError, KeyError, TypeError):
            return _problem(400, 'the body must be JSON: {"tools": [tool definitions]}')
        identity = self._identities.resolve(request)
        command = CallTool(
            tenant=identity.tenant,
            subject=identity.subject,
            roles=identity.roles,
            tool_name="register_tools",
            arguments={"tools": tools},
        )
        try:
            event = await self._gateway.call(command)
        except CommandTimeoutError as error:
            return _problem(504, str(error))
        except BusError:
            return _problem(503, "the command bus is unavailable; try again")
        return self._answer(event)

    def _answer(self, event: dict[str, Any]) -> JSONResponse:
        data = event["data"]
        if event["event_type"] == "ToolCallDenied":
            return _problem(403, data["reason"])
        if event["event_type"] == "ToolFailed":
            return _problem(422, data["error_code"], [data["message"]])
        return JSONResponse(data.get("structured") or {}, status_code=201)

    async def capabilities(self, request: Request) -> JSONResponse:
        identity = self._identities.resolve(request)
        try:
            session_id = session_from_headers(request)
        except BadSessionHeaderError as error:
            return _problem(400, str(error))
        if session_id is not None:
            view = await self._views.get(identity.tenant, session_id)
            if view is None or view.subject != identity.subject:
                session_id = None  # another's session: its tools stay hidden, its existence too
        specs = await self._catalog.visible(identity.tenant, session_id)
        tools = [
            {
                "name": spec.name,
                "title": spec.title,
                "description": spec.description,
                "inputSchema": spec.input_schema,
                "outputSchema": spec.output_schema,
                "readOnly": spec.read_only,
                "minimumRole": spec.minimum_role,
                "annotations": spec.annotations,
            }
            for spec in specs
        ]
        return JSONResponse({"tools": tools})
