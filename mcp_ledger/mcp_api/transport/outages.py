"""What an agent is told when a service behind the API fails during its request.

Without this, a PostgreSQL or Redis connection that drops (a partition, a reset, a restart)
reaches the SDK as an unexpected exception and the agent gets a bare JSON-RPC "Internal server
error", which does not say whether trying again can help. `ServiceOutages` is a middleware of
the SDK server (it wraps every request of both protocol eras): such an exception becomes a
JSON-RPC error with `data = {"retryable": true, "service": <which>}` and a fixed message, and is
logged here (the exception text, the host and the statement stay in the log, never on the wire).

Owns recognising a service failure by the exception's type and naming the service in words an
agent can act on ("database", "state store", "network"). Deliberately not here: the command bus
(server.py answers a BusError itself), tool errors (a command without an outcome in time is a
tool result, mcp_api/tools/results.py), and retrying (the agent decides; repeating a tools/call
whose first attempt was recorded before the failure records a second call, as any repeat does).
"""

from __future__ import annotations

import logging
import traceback
from typing import Any, Final

import redis.exceptions
import sqlalchemy.exc
from mcp.server import ServerRequestContext
from mcp.server.context import CallNext, HandlerResult
from mcp.shared.exceptions import MCPError

log = logging.getLogger(__name__)

SERVICE_UNAVAILABLE: Final = -32603
"""JSON-RPC internal error, the code clients already treat as the server's fault; the data
says it was a service and that the request may be repeated."""

_DATABASE = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,  # no pooled connection within the pool's timeout
    sqlalchemy.exc.DisconnectionError,
)
"""SQLAlchemy wraps the driver's errors (asyncpg's closed connection is an InterfaceError)."""
_STATE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
_NETWORK = (ConnectionError, TimeoutError)
"""A bare socket error: named after the client library it came through (asyncpg raises a
refused connection unwrapped), else "network"."""
_LIBRARIES = (
    ("asyncpg", "database"),
    ("sqlalchemy", "database"),
    ("aiosqlite", "database"),
    ("redis", "state store"),
)


def _through(error: BaseException) -> str:
    """The service whose client library raised `error` (the innermost frame that names one)."""
    named = "network"
    for frame, _ in traceback.walk_tb(error.__traceback__):
        module = str(frame.f_globals.get("__name__", ""))
        named = next((name for lib, name in _LIBRARIES if module.split(".")[0] == lib), named)
    return named


def failed_service(error: BaseException) -> str | None:
    """Which service `error` says failed ("database", "state store", "network"), or None when
    it is not a service failure. Looks through exception groups and the cause chain, because
    the SDK's task groups and SQLAlchemy both wrap the original."""
    seen: set[int] = set()
    pending: list[BaseException] = [error]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, sqlalchemy.exc.DBAPIError) and current.connection_invalidated:
            return "database"
        for kinds, name in ((_DATABASE, "database"), (_STATE, "state store")):
            if isinstance(current, kinds):
                return name
        if isinstance(current, _NETWORK):
            return _through(current)
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)
    return None


def outage_error(service: str) -> MCPError:
    """The JSON-RPC error an agent gets when `service` failed during its request."""
    return MCPError(
        SERVICE_UNAVAILABLE,
        f"Service unavailable: the {service} did not answer; the request may be retried",
        {"retryable": True, "service": service},
    )


class ServiceOutages:
    """SDK server middleware: a service failure during a request becomes a retryable error."""

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        try:
            return await call_next(ctx)
        except MCPError:
            raise
        except Exception as error:
            service = failed_service(error)
            if service is None:
                raise
            log.warning("%s: the %s failed: %r", ctx.method, service, error)
            raise outage_error(service) from error


__all__ = ["SERVICE_UNAVAILABLE", "ServiceOutages", "failed_service", "outage_error"]
