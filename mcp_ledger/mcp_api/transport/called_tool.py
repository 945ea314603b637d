"""The tool a `tools/call` request names, found once per request before the SDK sees it.

The SDK validates a call's `Mcp-Param-*` headers against the called tool's input schema before
dispatch. Without a lookup it finds that schema by running the whole `tools/list` handler (and
serialising and validating every listed tool) for every call: with 1,000 registered tools a
call cost more than a listing. The session layer already reads and parses the body, so it finds
the caller's tool there (async: the catalog lives in Redis) and keeps it in a context variable
for the request; the SDK's synchronous lookup and the call handler read it from there.

Scoped to one request and one caller by construction: the variable is set around that
request's dispatch only, for the identity and headers of that request, and the lookup answers
only for the tool name it was set for.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from starlette.requests import Request

from mcp_ledger.domain.tools import ToolSpec
from mcp_ledger.mcp_api.auth.identity import Identity

ToolFinder = Callable[[Request, Identity, str], Awaitable[ToolSpec | None]]
"""The tool a caller would reach by this name in this request (None: no such tool for them)."""

_CALLED: ContextVar[tuple[str, ToolSpec | None] | None] = ContextVar("ledger_called_tool", default=None)


_TASK_METHODS = frozenset({"tasks/get", "tasks/update", "tasks/cancel"})


def task_name_mismatch(payload: Mapping[str, Any], mcp_name: str | None) -> str | None:
    """Why a tasks/* request's `Mcp-Name` header disagrees with its `params.taskId` (SEP-2663
    names the task there; the SDK compares the header only for tools, prompts and
    resources), None when it agrees or is absent."""
    if mcp_name is None or payload.get("method") not in _TASK_METHODS:
        return None
    params = payload.get("params")
    task_id = params.get("taskId") if isinstance(params, Mapping) else None
    if mcp_name == task_id:
        return None
    return f"the Mcp-Name header does not match params.taskId of {payload['method']}"


def called_name(payload: Mapping[str, Any]) -> str | None:
    """The tool name of a JSON-RPC `tools/call` request, None for anything else."""
    if payload.get("method") != "tools/call":
        return None
    params = payload.get("params")
    name = params.get("name") if isinstance(params, Mapping) else None
    return name if isinstance(name, str) else None


@contextmanager
def calling(name: str, spec: ToolSpec | None) -> Iterator[None]:
    """While the request is dispatched: the tool `name` resolved to `spec`."""
    token = _CALLED.set((name, spec))
    try:
        yield
    finally:
        _CALLED.reset(token)


def resolved(name: str) -> tuple[bool, ToolSpec | None]:
    """(True, the tool) when this request resolved `name`, else (False, None)."""
    found = _CALLED.get()
    if found is None or found[0] != name:
        return False, None
    return True, found[1]
