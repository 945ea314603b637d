"""Wiring of the gRPC MCPToolService onto a running API runtime.

Picks the authenticator the HTTP API uses (the same JwtVerifier, or the local identity under
--no-auth) and serves the servicer on a grpc.aio server until the context exits. Plaintext
gRPC: put TLS in front (a mesh or a proxy), as for the HTTP API.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc

from mcp_ledger.grpc_api.service import GrpcAuthenticator, ToolServicer
from mcp_ledger.grpc_api.wire import service_handler
from mcp_ledger.mcp_api.auth.identity import Identity
from mcp_ledger.wiring.bootstrap import ConfigurationError, Runtime

GRACE_SECONDS = 5.0


def grpc_authenticator(runtime: Runtime) -> GrpcAuthenticator:
    """The HTTP API's verifier, or the local identity when the runtime serves without auth."""
    settings = runtime.settings
    local = Identity(settings.local_tenant, settings.local_subject, ("admin",)) if settings.no_auth else None
    return GrpcAuthenticator(
        runtime.verifier, local=local, tenant_claim=settings.tenant_claim, roles_claim=settings.roles_claim
    )


@asynccontextmanager
async def serving_grpc(runtime: Runtime, host: str, port: int) -> AsyncIterator[int]:
    """Serve MCPToolService for this runtime's API; yields the bound port (0 picks one).

    Raises:
        ConfigurationError: the runtime has no API, or the address cannot be bound.
    """
    if runtime.tool_service is None:
        raise ConfigurationError("the gRPC service needs the API part of the runtime")
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        (service_handler(ToolServicer(runtime.tool_service, grpc_authenticator(runtime))),)
    )
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError as error:
        raise ConfigurationError(f"cannot listen for gRPC on {host}:{port}: {error}") from error
    await server.start()
    try:
        yield bound
    finally:
        await server.stop(GRACE_SECONDS)
