"""Upstream progress, logs and requests on the agent's request: the API side of the relay.

Every API replica subscribes to the progress topic (broadcast) and hands each message to
the request waiting for its command here, if any: only when the message was published for
the tenant and subject the command was issued for (a command id is unguessable, and a
matching one from anyone else delivers nothing). The message is opened with the subject's
key, then sent as notifications/progress by the request's own callback; an upstream's
request (sampling, elicitation, roots) is written on the request's stream as a JSON-RPC
request with the worker's unguessable id (backchannel/), or refused to the worker at once.
"""

from __future__ import annotations

import asyncio
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
from mcp_types import METHOD_NOT_FOUND

from mcp_ledger.crypto.records import RecordSealer
from mcp_ledger.domain.commands import CallTool
from mcp_ledger.mcp_api.backchannel.replies import ReplyPublisher
from mcp_ledger.mcp_api.backchannel.stream import NoStreamError, write_request
from mcp_ledger.producers.ports import Message

log = logging.getLogger(__name__)

_EVENT_TYPES = {"log": "UpstreamLogged", "request": "UpstreamInputRequested"}

ProgressCallback = Callable[[float, float | None, str | None], Awaitable[None]]
LogCallback = Callable[[str, str | None, Any], Awaitable[None]]
AskCallback = Callable[[str, str, Any], Awaitable[None]]
"""(request id, method, params) of an upstream's request to the agent, to put on its stream."""


@dataclass(frozen=True, slots=True)
class _Listener:
    tenant: str
    subject: str
    stream_id: str
    callback: ProgressCallback
    log: LogCallback | None
    ask: AskCallback | None = None


class ProgressHub:
    """Routes relayed progress to the requests of this replica."""

    def __init__(self, sealer: RecordSealer | None, replies: ReplyPublisher | None = None) -> None:
        self._sealer = sealer
        self._replies = replies
        self._listeners: dict[str, _Listener] = {}
        self._telling: set[asyncio.Task[None]] = set()

    @contextlib.contextmanager
    def listening(
        self,
        command: CallTool,
        callback: ProgressCallback,
        log: LogCallback | None = None,
        ask: AskCallback | None = None,
    ) -> Iterator[None]:
        """Deliver the command's progress to `callback` (logs to `log`, upstream requests to
        `ask`) while the block runs. A block that ends by an exception (the agent disconnected
        and its request was cancelled, or the wait gave up) leaves nobody to answer the
        command's upstream requests: the worker is told so (`abandon`)."""
        listener = _Listener(command.tenant, command.subject, command.stream_id, callback, log, ask)
        self._listeners[command.command_id] = listener
        try:
            yield
        except BaseException:
            self._abandon(command)
            raise
        finally:
            if self._listeners.get(command.command_id) is listener:
                del self._listeners[command.command_id]

    def _abandon(self, command: CallTool) -> None:
        """Tell the worker in the background: the request's task may be being cancelled."""
        replies = self._replies
        if replies is None:
            return

        async def tell() -> None:
            try:
                await replies.abandon(command.tenant, command.subject, command.command_id)
            except Exception as error:  # best effort: the worker's wait still ends at its timeout
                log.info("abandonment of %s not published: %r", command.command_id, error)

        task = asyncio.get_running_loop().create_task(tell(), name="upstream-request-abandoned")
        self._telling.add(task)
        task.add_done_callback(self._telling.discard)

    async def answer(self, tenant: str, subject: str, request_id: str, result: Any) -> bool:
        """A 2026-07-28 agent's inputResponses to a round, for the worker waiting on them;
        False when there is no reply topic here.

        Raises:
            BusError: the bus refused it.
        """
        if self._replies is None:
            return False
        return await self._replies.answer(tenant, subject, {"id": request_id, "result": result})

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
        event_type = _EVENT_TYPES.get(kind, "UpstreamProgressed")
        data = json.loads(message.value)
        if self._sealer is not None:
            metadata = {"tenant": listener.tenant, "subject": listener.subject}
            data = await self._sealer.open_event(event_type, data, metadata, listener.stream_id)
        if kind == "request":
            await self._ask(listener, data)
            return
        try:
            await self._deliver(listener, kind, data)
        except Exception as error:  # the agent's stream may be gone; the call goes on
            log.debug("%s not delivered: %r", kind, error)

    async def _ask(self, listener: _Listener, data: dict[str, Any]) -> None:
        """An upstream's request, put to the agent; one that cannot be is refused at once, so
        the worker's upstream hears it now rather than at the timeout."""
        request_id = str(data.get("request_id", ""))
        try:
            if listener.ask is None:
                raise NoStreamError("the agent's request has no stream for upstream requests")
            await listener.ask(request_id, str(data.get("method", "")), data.get("params"))
        except Exception as error:  # boundary: refused to the upstream, never raised here
            log.info("upstream request not relayed: %r", error)
            if self._replies is not None:
                refusal = {"code": METHOD_NOT_FOUND, "message": f"not relayed to the agent: {error}"}
                await self._replies.answer(
                    listener.tenant, listener.subject, {"id": request_id, "error": refusal}
                )

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
    hub: ProgressHub,
    ctx: ServerRequestContext[Any],
    command: CallTool,
    rounds: AskCallback | None = None,
) -> AbstractContextManager[None]:
    """The command's upstream progress and log notifications sent on this request's stream;
    its upstream's requests too for a 2025-11-25 agent. A 2026-07-28 one may not be sent
    requests: its upstream's input_required rounds go to `rounds` (backchannel/rounds.py),
    any single request is refused to the upstream at once."""

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

    async def on_stream(request_id: str, method: str, params: Any) -> None:
        await write_request(ctx, request_id, method, params)

    legacy = not str(ctx.protocol_version).startswith("2026-")
    return hub.listening(command, relay, log, on_stream if legacy else rounds)
