"""Whether a request negotiated the tasks extension: in its own `_meta` (the 2026-07-28
envelope, SEP-2575's per-request opt-in, also honoured on a 2025-11-25 session), or for its
2025-11-25 session at `initialize` (client capabilities `extensions`).

The SDK runs stateless behind the session layer, so it forgets what a 2025-11-25 client
declared at `initialize` once that request is answered. This server middleware keeps the
declaration with the transport session (TransportSessions.set_extensions, which ends with the
session and with the subject's erasure) and, for each later request of that session on the
tasks surface, reads it once and holds it in a context variable for that request's dispatch
only; `negotiated` consults it. Only extensions the server serves are kept, so a client
cannot park arbitrary data in the session record.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

import mcp_types as types
from mcp.server import ServerRequestContext
from mcp.server.context import CallNext, HandlerResult
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from mcp_ledger.mcp_api.tasks.wire import TASKS_EXTENSION
from mcp_ledger.mcp_api.transport.session_headers import TRANSPORT_SESSION_HEADER
from mcp_ledger.mcp_api.transport.sessions import TransportSessions

CLIENT_CAPABILITIES_META = "io.modelcontextprotocol/clientCapabilities"
_TASKS_CAPABILITY = types.ClientCapabilities(extensions={TASKS_EXTENSION: {}})
SERVED_EXTENSIONS = frozenset({TASKS_EXTENSION})
"""The extensions a session's declaration is kept for (the ones this server serves)."""

TASK_SURFACE = frozenset(
    {"tools/call", "tasks/get", "tasks/cancel", "tasks/update", "tasks/result", "tasks/list"}
)
"""The requests whose answer depends on the negotiation: only these read the session's."""

_SESSION_DECLARED: ContextVar[bool] = ContextVar("ledger_session_declared_tasks", default=False)


def handshake_era(ctx: ServerRequestContext[Any]) -> bool:
    """Whether the request comes from a 2025-11-25 (initialize) session."""
    return ctx.session.protocol_version not in MODERN_PROTOCOL_VERSIONS


def negotiated(ctx: ServerRequestContext[Any], meta: types.RequestParamsMeta | None) -> bool:
    """Whether this request may use tasks: its connection or its 2025-11-25 session declared
    the extension, or this request's `_meta` declares it."""
    if _SESSION_DECLARED.get() or ctx.session.check_client_capability(_TASKS_CAPABILITY):
        return True
    return TASKS_EXTENSION in _declared_extensions((meta or {}).get(CLIENT_CAPABILITIES_META))


def _declared_extensions(capabilities: object) -> frozenset[str]:
    """The extension ids a client capabilities object declares (none when malformed)."""
    if not isinstance(capabilities, Mapping):
        return frozenset()
    extensions = capabilities.get("extensions")
    if not isinstance(extensions, Mapping):
        return frozenset()
    return frozenset(key for key in extensions if isinstance(key, str))


def _transport_session(ctx: ServerRequestContext[Any]) -> str | None:
    """The request's live 2025-11-25 session (set by the session layer only), if any."""
    return None if ctx.request is None else ctx.request.headers.get(TRANSPORT_SESSION_HEADER)


class SessionNegotiation:
    """Server middleware: keeps a 2025-11-25 session's extensions declared at `initialize`
    and makes them this session's requests' own while they are dispatched."""

    def __init__(self, sessions: TransportSessions | None) -> None:
        self._sessions = sessions

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        session_id = _transport_session(ctx)
        if self._sessions is None or session_id is None:
            return await call_next(ctx)
        if ctx.method == "initialize":
            answer = await call_next(ctx)  # kept only once the handshake succeeded
            await self._keep(session_id, ctx.params)
            return answer
        if ctx.method not in TASK_SURFACE or not handshake_era(ctx):
            return await call_next(ctx)
        declared = TASKS_EXTENSION in await self._sessions.extensions(session_id)
        token = _SESSION_DECLARED.set(declared)
        try:
            return await call_next(ctx)
        finally:
            _SESSION_DECLARED.reset(token)

    async def _keep(self, session_id: str, params: Mapping[str, Any] | None) -> None:
        assert self._sessions is not None
        declared = _declared_extensions((params or {}).get("capabilities")) & SERVED_EXTENSIONS
        if declared:
            await self._sessions.set_extensions(session_id, declared)
