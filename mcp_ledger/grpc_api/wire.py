"""MCPToolService's method table, typed: server handlers and a client.

What protoc's grpc plugin would generate, written against grpcio's typed API instead, so
the service and its callers are checked by mypy; the messages themselves are generated
(generated/mcp_tool_service_pb2.py). Method paths follow the proto's package and service.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Protocol

import grpc

from mcp_ledger.grpc_api.generated import mcp_tool_service_pb2 as pb

SERVICE = "mcp_ledger.v1.MCPToolService"
Metadata = Sequence[tuple[str, str]]


class MCPToolServicer(Protocol):
    async def RegisterTool(  # noqa: N802 (the proto's method names)
        self, request: pb.RegisterToolRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.RegisterToolResponse: ...

    async def ListCapabilities(  # noqa: N802
        self, request: pb.ListCapabilitiesRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ListCapabilitiesResponse: ...

    def ExecuteTool(  # noqa: N802
        self,
        requests: AsyncIterator[pb.ExecuteToolRequest],
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[pb.ExecuteToolResponse]: ...


def service_handler(servicer: MCPToolServicer) -> grpc.GenericRpcHandler:
    """The generic handler to add to a grpc.aio server."""
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
        "RegisterTool": grpc.unary_unary_rpc_method_handler(
            servicer.RegisterTool,
            request_deserializer=pb.RegisterToolRequest.FromString,
            response_serializer=pb.RegisterToolResponse.SerializeToString,
        ),
        "ListCapabilities": grpc.unary_unary_rpc_method_handler(
            servicer.ListCapabilities,
            request_deserializer=pb.ListCapabilitiesRequest.FromString,
            response_serializer=pb.ListCapabilitiesResponse.SerializeToString,
        ),
        "ExecuteTool": grpc.stream_stream_rpc_method_handler(
            servicer.ExecuteTool,
            request_deserializer=pb.ExecuteToolRequest.FromString,
            response_serializer=pb.ExecuteToolResponse.SerializeToString,
        ),
    }
    return grpc.method_handlers_generic_handler(SERVICE, handlers)


class MCPToolServiceClient:
    """A client of MCPToolService over a grpc.aio channel; `token` goes into every call."""

    def __init__(self, channel: grpc.aio.Channel, *, token: str | None = None) -> None:
        self._metadata: Metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._register: Callable[..., Awaitable[pb.RegisterToolResponse]] = channel.unary_unary(
            f"/{SERVICE}/RegisterTool",
            request_serializer=pb.RegisterToolRequest.SerializeToString,
            response_deserializer=pb.RegisterToolResponse.FromString,
        )
        self._list: Callable[..., Awaitable[pb.ListCapabilitiesResponse]] = channel.unary_unary(
            f"/{SERVICE}/ListCapabilities",
            request_serializer=pb.ListCapabilitiesRequest.SerializeToString,
            response_deserializer=pb.ListCapabilitiesResponse.FromString,
        )
        self._execute = channel.stream_stream(
            f"/{SERVICE}/ExecuteTool",
            request_serializer=pb.ExecuteToolRequest.SerializeToString,
            response_deserializer=pb.ExecuteToolResponse.FromString,
        )

    async def register_tool(self, request: pb.RegisterToolRequest) -> pb.RegisterToolResponse:
        return await self._register(request, metadata=self._metadata)

    async def list_capabilities(self, request: pb.ListCapabilitiesRequest) -> pb.ListCapabilitiesResponse:
        return await self._list(request, metadata=self._metadata)

    async def execute_tool(
        self, requests: AsyncIterator[pb.ExecuteToolRequest]
    ) -> AsyncIterator[pb.ExecuteToolResponse]:
        """Stream calls in; yields progress and results as they come."""
        call = self._execute(requests, metadata=self._metadata)
        async for response in call:
            yield response
