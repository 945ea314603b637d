"""Which call an upstream's log notification or request to its client belongs to.

Calls of one subject may share an upstream connection (a ledger session's upstream session,
or a subject's stateless 2026-07-28 connection), and the SDK client hands its logging and
sampling/elicitation/roots callbacks no request id. What it does carry is the caller's
contextvars: the Streamable HTTP client sends each request from the calling task's context,
reads that request's response stream in a copy of it, and runs the callbacks of what arrives
there (the upstream's notifications and requests related to that request) in that copy
(`mcp.shared._context_streams`). So each call marks its task with its own sinks
(`InFlightCalls.call`) and a callback finds the call it runs for in `current_call`. A
callback outside every call's context (the session's GET stream, or a stdio transport,
whose plain streams carry no context) goes to the only call in flight, and to none when
there are several: one call's logs or questions never reach another call's agent.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import mcp_types as types

LogSink = Callable[[str, str | None, Any], Awaitable[None]]
"""(level, logger, data) of one upstream log notification."""
InputSink = Callable[[str, dict[str, Any] | None], Awaitable[dict[str, Any] | types.ErrorData]]
"""(method, params) of one upstream request to its client: the agent's result, or an error."""


@dataclass(eq=False, frozen=True, slots=True)
class CallSinks:
    """Where one call's upstream log notifications and requests go (compared by identity)."""

    log: LogSink | None = None
    ask: InputSink | None = None


current_call: ContextVar[CallSinks | None] = ContextVar("mcp_ledger_upstream_call", default=None)
"""The call whose task (or a copy of its context) is running: set by InFlightCalls.call."""


class InFlightCalls:
    """The calls in flight on one upstream connection."""

    def __init__(self) -> None:
        self._calls: list[CallSinks] = []

    def __len__(self) -> int:
        return len(self._calls)

    @contextlib.contextmanager
    def call(self, sinks: CallSinks) -> Iterator[None]:
        """While the block runs, `sinks` is a call in flight, marked on the running context."""
        self._calls.append(sinks)
        token = current_call.set(sinks)
        try:
            yield
        finally:
            current_call.reset(token)
            self._calls.remove(sinks)

    def owner(self) -> CallSinks | None:
        """The call the running callback belongs to; None when it is not known (several calls
        in flight and none in this context) or that call has ended."""
        marked = current_call.get()
        if marked is not None:
            return marked if any(call is marked for call in self._calls) else None
        return self._calls[0] if len(self._calls) == 1 else None


def outside_every_call() -> None:
    """Clear the mark in the running context: a connection's owner task is started from the
    context of the call that opened it, and what it reads for no request (the GET stream)
    must not look like that call's."""
    current_call.set(None)
