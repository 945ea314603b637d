"""Upstream MCP servers over plain HTTP: POST/GET /v1/servers, DELETE /v1/servers/{name},
POST /v1/servers/{name}/approve, /reject (body `{"hashes": {tool: sha256}, "reason"}`: the
definitions the caller saw) and /refresh.

Each is the same command an MCP client would send (register_server, list_servers,
remove_server, approve_server, reject_server, refresh_server) through ToolService, so the checks, roles
and records are the worker's; a stdio `command` in the body is refused there like over
MCP. Status codes as for /v1/tools (routes/registration.py), 200 for reads and removals.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from mcp_ledger.mcp_api.auth.identity import BadSessionHeaderError, IdentityResolver, session_from_headers
from mcp_ledger.mcp_api.routes.bodies import BodyError, json_body
from mcp_ledger.mcp_api.routes.registration import http_answer
from mcp_ledger.mcp_api.tools.service import ToolService

MAX_BODY_BYTES = 64 * 1024


def _problem(status: int, title: str) -> JSONResponse:
    return JSONResponse({"title": title}, status_code=status, media_type="application/problem+json")


class ServersHttp:
    """Starlette routes for upstream servers."""

    def __init__(self, service: ToolService, identities: IdentityResolver) -> None:
        self._service = service
        self._identities = identities

    def routes(self) -> list[Route]:
        return [
            Route("/v1/servers", self.register, methods=["POST"]),
            Route("/v1/servers", self.listing, methods=["GET"]),
            Route("/v1/servers/{name}", self.remove, methods=["DELETE"]),
            Route("/v1/servers/{name}/approve", self.approve, methods=["POST"]),
            Route("/v1/servers/{name}/reject", self.reject, methods=["POST"]),
            Route("/v1/servers/{name}/refresh", self.refresh, methods=["POST"]),
        ]

    async def _call(self, request: Request, tool: str, arguments: dict[str, Any], ok: int) -> JSONResponse:
        identity = self._identities.resolve(request)
        try:
            session_id = session_from_headers(request)
        except BadSessionHeaderError as error:
            return _problem(400, str(error))
        answer = http_answer(await self._service.call(identity, session_id, tool, arguments))
        if answer.status_code == 201:
            answer.status_code = ok
        return answer

    async def register(self, request: Request) -> JSONResponse:
        try:
            payload = await json_body(request, MAX_BODY_BYTES)
        except BodyError as error:
            return _problem(error.status, f"the body must be a JSON server entry: {error}")
        if not isinstance(payload, dict):
            return _problem(400, 'the body must be a JSON object: {"name": ..., "url": ...}')
        return await self._call(request, "register_server", payload, 201)

    async def listing(self, request: Request) -> JSONResponse:
        return await self._call(request, "list_servers", {}, 200)

    def _named(self, request: Request) -> dict[str, Any]:
        arguments: dict[str, Any] = {"name": request.path_params["name"]}
        if request.query_params.get("scope") == "session":
            arguments["scope"] = "session"
        return arguments

    async def remove(self, request: Request) -> JSONResponse:
        return await self._call(request, "remove_server", self._named(request), 200)

    async def _decide(self, request: Request, tool: str) -> JSONResponse:
        try:
            payload = await json_body(request, MAX_BODY_BYTES)
        except BodyError as error:
            return _problem(error.status, f'the body must be {{"hashes": {{tool: sha256}}}}: {error}')
        if not isinstance(payload, dict):
            return _problem(400, 'the body must be a JSON object: {"hashes": {tool: sha256}}')
        decision = {k: v for k, v in payload.items() if k in {"hashes", "reason"}}
        return await self._call(request, tool, {**self._named(request), **decision}, 200)

    async def approve(self, request: Request) -> JSONResponse:
        return await self._decide(request, "approve_server")

    async def reject(self, request: Request) -> JSONResponse:
        return await self._decide(request, "reject_server")

    async def refresh(self, request: Request) -> JSONResponse:
        return await self._call(request, "refresh_server", self._named(request), 200)
