"""The gRPC servicer of MCPToolService: authentication, then ToolService, then status codes.

Authenticates every RPC with the bearer JWT in the `authorization` metadata through the
HTTP API's JwtVerifier (or serves the local identity under --no-auth), and maps ToolService
outcomes to gRPC status codes. ExecuteTool runs the calls of one stream concurrently (at
most MAX_IN_FLIGHT), each an ordinary recorded CallTool; responses carry the client's
call_id. It owns no rules of its own: registration, roles and recording are ToolService's
and the worker's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import grpc

from mcp_ledger.grpc_api.generated import mcp_tool_service_pb2 as pb
from mcp_ledger.grpc_api.structs import to_json, to_struct
from mcp_ledger.mcp_api.auth.access_tokens import JwtVerifier, roles_of
from mcp_ledger.mcp_api.auth.identity import Identity
from mcp_ledger.mcp_api.tools.service import ServiceOutcome, ToolService

log = logging.getLogger(__name__)

MAX_IN_FLIGHT = 32
Context = grpc.aio.ServicerContext[Any, Any]
STATUS = {
    "invalid": grpc.StatusCode.INVALID_ARGUMENT,
    "forbidden": grpc.StatusCode.PERMISSION_DENIED,
    "refused": grpc.StatusCode.FAILED_PRECONDITION,
    "timeout": grpc.StatusCode.DEADLINE_EXCEEDED,
    "unavailable": grpc.StatusCode.UNAVAILABLE,
    "unknown_tool": grpc.StatusCode.NOT_FOUND,
    "too_large": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "rate_limited": grpc.StatusCode.RESOURCE_EXHAUSTED,
}


class GrpcAuthenticator:
    """Identity of a gRPC caller: the verified token's, or the local user's without auth."""

    def __init__(
        self,
        verifier: JwtVerifier | None,
        *,
        local: Identity | None = None,
        tenant_claim: str = "tenant",
        roles_claim: str = "roles",
    ) -> None:
        if verifier is None and local is None:
            raise ValueError("give a verifier, or the local identity to serve without authentication")
        self._verifier = verifier
        self._local = local
        self._tenant_claim = tenant_claim
        self._roles_claim = roles_claim

    async def identity(self, metadata: Mapping[str, str]) -> Identity | None:
        """The caller, None when its token is missing or not valid."""
        if self._verifier is None:
            return self._local
        scheme, _, token = metadata.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        access = await self._verifier.verify_token(token.strip())
        if access is None or access.claims is None:
            return None
        claims = access.claims
        return Identity(
            str(claims[self._tenant_claim]), str(access.subject), roles_of(claims, self._roles_claim)
        )


def _metadata(context: Context) -> dict[str, str]:
    return {str(key).lower(): str(value) for key, value in context.invocation_metadata() or ()}


def _details(outcome: ServiceOutcome) -> str:
    return "; ".join([outcome.title, *outcome.problems]) if outcome.problems else outcome.title


def _result(outcome: ServiceOutcome) -> pb.ToolResult:
    event = outcome.event
    if event is None:  # refused before a command existed
        return pb.ToolResult(is_error=True, error_code=outcome.kind, message=_details(outcome))
    data = event["data"]
    result = pb.ToolResult(
        event_type=str(event["event_type"]), is_error=outcome.kind != "ok", command_id=outcome.command_id
    )
    if outcome.kind == "ok":
        result.content.extend(s for s in (to_struct(dict(block)) for block in data["content"]) if s)
        structured = to_struct(data.get("structured"))
        if structured is not None:
            result.structured.CopyFrom(structured)
    else:
        result.error_code = "forbidden" if outcome.kind == "forbidden" else outcome.title
        result.message = _details(outcome) if outcome.kind != "forbidden" else outcome.title
    return result


class ToolServicer:
    """MCPToolService over gRPC (see wire.service_handler)."""

    def __init__(self, service: ToolService, auth: GrpcAuthenticator) -> None:
        self._service = service
        self._auth = auth

    async def _caller(self, context: Context) -> Identity:
        identity = await self._auth.identity(_metadata(context))
        if identity is None:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "a valid bearer access token is required")
            raise AssertionError("abort raises")
        return identity

    async def RegisterTool(  # noqa: N802 (the proto's method names)
        self, request: pb.RegisterToolRequest, context: Context
    ) -> pb.RegisterToolResponse:
        identity = await self._caller(context)
        outcome = await self._service.register(identity, [to_json(tool) for tool in request.tools])
        if outcome.kind != "ok":
            await context.abort(STATUS[outcome.kind], _details(outcome))
        data = outcome.data
        return pb.RegisterToolResponse(
            scope=str(data.get("scope", "")),
            version=int(data.get("version", 0)),
            registered=[str(name) for name in data.get("registered", [])],
        )

    async def ListCapabilities(  # noqa: N802
        self, request: pb.ListCapabilitiesRequest, context: Context
    ) -> pb.ListCapabilitiesResponse:
        identity = await self._caller(context)
        tools = await self._service.capabilities(identity, request.session_id or None)
        return pb.ListCapabilitiesResponse(
            tools=[
                pb.Capability(
                    name=tool["name"],
                    title=tool["title"],
                    description=tool["description"],
                    input_schema=to_struct(tool["inputSchema"]),
                    output_schema=to_struct(tool["outputSchema"]),
                    read_only=tool["readOnly"],
                    minimum_role=tool["minimumRole"] or "",
                    annotations=to_struct(tool["annotations"]),
                )
                for tool in tools
            ]
        )

    async def ExecuteTool(  # noqa: N802
        self, requests: AsyncIterator[pb.ExecuteToolRequest], context: Context
    ) -> AsyncIterator[pb.ExecuteToolResponse]:
        identity = await self._caller(context)
        out: asyncio.Queue[pb.ExecuteToolResponse | None] = asyncio.Queue()
        reader = asyncio.create_task(self._read_calls(identity, requests, out))
        try:
            while (response := await out.get()) is not None:
                yield response
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    async def _read_calls(
        self,
        identity: Identity,
        requests: AsyncIterator[pb.ExecuteToolRequest],
        out: asyncio.Queue[pb.ExecuteToolResponse | None],
    ) -> None:
        slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        in_flight: set[str] = set()
        try:
            async with asyncio.TaskGroup() as calls:
                async for request in requests:
                    if request.call_id in in_flight:
                        refusal = ServiceOutcome("invalid", f"call_id {request.call_id!r} is already running")
                        await out.put(
                            pb.ExecuteToolResponse(call_id=request.call_id, result=_result(refusal))
                        )
                        continue
                    await slots.acquire()
                    in_flight.add(request.call_id)
                    calls.create_task(self._one_call(identity, request, out, slots, in_flight))
        finally:
            await out.put(None)

    async def _one_call(
        self,
        identity: Identity,
        request: pb.ExecuteToolRequest,
        out: asyncio.Queue[pb.ExecuteToolResponse | None],
        slots: asyncio.Semaphore,
        in_flight: set[str],
    ) -> None:
        async def accepted(command_id: str) -> None:
            progress = pb.Progress(state="accepted", command_id=command_id)
            await out.put(pb.ExecuteToolResponse(call_id=request.call_id, progress=progress))

        try:
            outcome = await self._service.call(
                identity,
                request.session_id or None,
                request.tool_name,
                to_json(request.arguments),
                on_submit=accepted,
            )
            result = _result(outcome)
            await out.put(pb.ExecuteToolResponse(call_id=request.call_id, result=result))
        finally:
            in_flight.discard(request.call_id)
            slots.release()
