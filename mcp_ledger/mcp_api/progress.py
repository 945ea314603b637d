"""Upstream progress on the agent's request: the API side of the relay.

Every API replica subscribes to the progress topic (broadcast) and hands each message to
the request waiting for its command here, if any: only when the message was published for
the tenant and subject the command was issued for (a command id is unguessable, and a
matching one from anyone else delivers nothing). The message is opened with the subject's
key, then sent as notifications/progress by the request's own callback.
"""

from __future__ import annotations

import contextlib
import json
import logging
import warnings
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from mcp.server import ServerRequestContext
from mcp.shared.exceptions import MCPDeprecationWarning

from mcp_ledger.crypto.records import RecordSealer
from mcp_ledger.domain.commands import CallTool
from mcp_ledger.producers.ports import Message

log = logging.getLogger(__name__)

ProgressCallback = Callable[[float, float | None, str | None], Awaitable[None]]
LogCallback = Callable[[str, str | None, Any], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class _Listener:
    tenant: str
    subject: str
    stream_id: str
    callback: ProgressCallback
    log: LogCallback | None


class ProgressHub:
    """Routes relayed progress to the requests of this replica."""

    def __init__(self, sealer: RecordSealer | None) -> None:
        self._sealer = sealer
        self._listeners: dict[str, _Listener] = {}

    @contextlib.contextmanager
    def listening(
        self, command: CallTool, callback: ProgressCallback, log: LogCallback | None = None
    ) -> Iterator[None]:
        """Deliver the command's progress to `callback` (and logs to `log`) while the block runs."""
        listener = _Listener(command.tenant, command.subject, command.stream_id, callback, log)
        self._listeners[command.command_id] = listener
        try:
            yield
        finally:
            self._listeners.pop(command.command_id, None)

    async def on_message(self, message: Message) -> None:
        """Broadcast handler of the progress topic."""
        listener = self._listeners.get(message.headers.get("command_id", ""))
        if listener is None:
            return
        if (message.headers.get("tenant"), message.headers.get("subject")) != (
            listener.tenant,
            listener.subject,
        ):
            log.warning("ignoring progress for a command of someone else")
            return
        kind = message.headers.get("kind", "progress")
        event_type = "UpstreamLogged" if kind == "log" else "UpstreamProgressed"
        data = json.loads(message.value)
        if self._sealer is not None:
            metadata = {"tenant": listener.tenant, "subject": listener.subject}
            data = await self._sealer.open_event(event_type, data, metadata, listener.stream_id)
        try:
            await self._deliver(listener, kind, data)
        except Exception as error:  # the agent's stream may be gone; the call goes on
            log.debug("%s not delivered: %r", kind, error)

    @staticmethod
    async def _deliver(listener: _Listener, kind: str, data: dict[str, Any]) -> None:
        if kind == "log":
            if listener.log is not None:
                logger = data.get("logger")
                await listener.log(
                    str(data["level"]), logger if isinstance(logger, str) else None, data.get("data")
                )
            return
        message_text = data.get("message")
        await listener.callback(
            float(data["progress"]),
            None if data.get("total") is None else float(data["total"]),
            message_text if isinstance(message_text, str) else None,
        )


def relaying(
    hub: ProgressHub, ctx: ServerRequestContext[Any], command: CallTool
) -> AbstractContextManager[None]:
    """The command's upstream progress and log notifications sent on this request's stream."""

    async def relay(progress: float, total: float | None, message: str | None) -> None:
        await ctx.session.report_progress(progress, total, message)

    async def log(level: str, logger: str | None, data: Any) -> None:
        with warnings.catch_warnings():  # logging is deprecated in 2026-07-28; relayed as sent
            warnings.simplefilter("ignore", MCPDeprecationWarning)
            await ctx.session.send_log_message(
                level,  # type: ignore[arg-type]
                data,
                logger,
                related_request_id=ctx.request_id,
            )

    return hub.listening(command, relay, log)
