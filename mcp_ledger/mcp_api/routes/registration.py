"""The registration API over plain HTTP: POST /v1/tools and GET /v1/capabilities.

The HTTP mapping of MCPToolService's RegisterTool and ListCapabilities; both run through
ToolService (tool_service.py), the code path gRPC uses too. Status codes: 413 past
MAX_BODY_BYTES, 400 for a body that is not JSON, nests deeper than the caller-data bound
(checks/documents.py) or is not {"tools": [...]}, and for every problem with the tools
(nothing published), 403 without the registering role, 422 when the worker refuses, 504 and
503 when the outcome or the bus is missing. Identity comes from an IdentityResolver.
"""

from __future__ import annotations

import math
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from mcp_ledger.mcp_api.auth.identity import BadSessionHeaderError, IdentityResolver, session_from_headers
from mcp_ledger.mcp_api.routes.bodies import BodyError, json_body
from mcp_ledger.mcp_api.tools.service import ServiceOutcome, ToolService

MAX_BODY_BYTES = 1024 * 1024
HTTP_STATUS = {
    "ok": 201,
    "invalid": 400,
    "forbidden": 403,
    "refused": 422,
    "timeout": 504,
    "unavailable": 503,
    "unknown_tool": 404,
    "too_large": 413,
    "rate_limited": 429,
}


def _problem(status: int, title: str, problems: list[str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"title": title}
    if problems:
        body["problems"] = problems
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


def http_answer(outcome: ServiceOutcome) -> JSONResponse:
    """The HTTP response for a service outcome."""
    status = HTTP_STATUS[outcome.kind]
    if outcome.kind == "ok":
        return JSONResponse(outcome.data, status_code=status)
    answer = _problem(status, outcome.title, list(outcome.problems))
    if outcome.kind == "rate_limited":
        answer.headers["retry-after"] = str(math.ceil(float(outcome.data["retry_after_seconds"])))
    return answer


class RegistrationHttp:
    """Starlette routes for tool registration and capability listing."""

    def __init__(self, service: ToolService, identities: IdentityResolver) -> None:
        self._service = service
        self._identities = identities

    def routes(self) -> list[Route]:
        return [
            Route("/v1/tools", self.register_tools, methods=["POST"]),
            Route("/v1/capabilities", self.capabilities, methods=["GET"]),
        ]

    async def register_tools(self, request: Request) -> JSONResponse:
        try:
            payload = await json_body(request, MAX_BODY_BYTES)
        except BodyError as error:
            return _problem(error.status, f'the body must be JSON {{"tools": [tool definitions]}}: {error}')
        if not isinstance(payload, dict) or "tools" not in payload:
            return _problem(400, 'the body must be JSON: {"tools": [tool definitions]}')
        tools = payload["tools"]
        return http_answer(await self._service.register(self._identities.resolve(request), tools))

    async def capabilities(self, request: Request) -> JSONResponse:
        identity = self._identities.resolve(request)
        try:
            session_id = session_from_headers(request)
        except BadSessionHeaderError as error:
            return _problem(400, str(error))
        return JSONResponse({"tools": await self._service.capabilities(identity, session_id)})
