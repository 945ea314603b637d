"""The worker side of the back channel: an upstream's requests to the client, asked of the agent.

While a worker runs an upstream call, the upstream may ask its client (the worker) for
sampling, elicitation or roots. Each request gets a fresh unguessable id and is published on
the progress topic (kind "request", keyed by the call's session stream, its params sealed
with the subject's key) for the API replica holding the agent's request; the worker waits for
the answer, bounded by the call's timeout. Answers arrive on the reply topic, which every
worker hears (broadcast): one is taken only for an open request of this worker, published
for the tenant and subject that request was asked for, and only once. It does not decide
what the agent may be asked (the API checks the agent's capabilities) nor hold any state
beyond the requests and calls in flight: a worker that dies loses them with its call.

When the API replica's request for a command ends unanswered (the agent disconnected before
the request or round reached it, or the API stopped waiting), it says so on the reply topic
(ABANDONED_HEADER): the worker running that command, for that tenant and subject, ends the
command's open requests at once and refuses its later ones, instead of waiting out the
timeout. A round already delivered has no such signal (the agent may retry or not; the
protocol has no "abandon"), so its wait still ends only at LEDGER_UPSTREAM_INPUT_WAIT.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from mcp.shared.exceptions import MCPError

from mcp_ledger.consumers.upstreams.relay.progress import Publish, publish_frame
from mcp_ledger.crypto.records import RecordSealer
from mcp_ledger.domain.commands import CallTool
from mcp_ledger.domain.upstreams.events import (
    ABANDONED_HEADER,
    UpstreamInputAnswered,
    UpstreamInputRequested,
    input_answer_scope,
)

log = logging.getLogger(__name__)

NOT_ANSWERED = -32001
"""The JSON-RPC error the upstream gets when the agent did not answer in time."""
GONE = "the agent's request ended: nobody is left to answer"


class AgentRefusedError(Exception):
    """The agent answered a relayed request with a JSON-RPC error (or none came in time)."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


class AgentRoundError(MCPError):
    """An input round or request the agent refused or never answered, raised into the
    upstream call's own code (not the SDK's): its code may be -32001 like the SDK's read
    timeout, yet the upstream did not time out, so it must not be taken for one."""


@dataclass(frozen=True, slots=True)
class _Open:
    tenant: str
    subject: str
    stream_id: str
    answer: asyncio.Future[UpstreamInputAnswered]
    command_id: str = ""


@dataclass(eq=False, slots=True)
class _Running:
    """A command whose upstream call runs on this worker, and whether its agent is gone."""

    tenant: str
    subject: str
    gone: bool = False


def result_of(answer: UpstreamInputAnswered) -> Any:
    """The agent's result of a relayed request.

    Raises:
        AgentRefusedError: the agent answered with a JSON-RPC error.
    """
    if answer.error is not None:
        error = answer.error if isinstance(answer.error, dict) else {}
        code = error.get("code")
        raise AgentRefusedError(
            code if isinstance(code, int) else NOT_ANSWERED,
            str(error.get("message", "the agent refused")),
            error.get("data"),
        )
    return answer.result


class BusBackChannel:
    """Asks the agent of a call for what its upstream asked, and hears the answers."""

    def __init__(self, publish: Publish, request_topic: str, sealer: RecordSealer | None) -> None:
        self._publish = publish
        self._topic = request_topic
        self._sealer = sealer
        self._open: dict[str, _Open] = {}
        self._running: dict[str, _Running] = {}

    def __len__(self) -> int:
        return len(self._open)

    @contextlib.contextmanager
    def running(self, command: CallTool) -> Iterator[None]:
        """While the block runs the command's upstream call here, hear that its agent is gone."""
        entry = _Running(command.tenant, command.subject)
        self._running[command.command_id] = entry
        try:
            yield
        finally:
            if self._running.get(command.command_id) is entry:
                del self._running[command.command_id]

    async def ask(self, command: CallTool, method: str, params: Any, timeout_s: float) -> Any:
        """The agent's result for one upstream request of this command's call.

        Raises:
            AgentRefusedError: the agent answered with an error, or not within timeout_s.
        """
        running = self._running.get(command.command_id)
        if running is not None and running.gone:
            raise AgentRefusedError(NOT_ANSWERED, f"{GONE} {method}")
        request_id = secrets.token_urlsafe(24)
        future = self.expect(command, request_id)
        try:
            event = UpstreamInputRequested(
                command_id=command.command_id, request_id=request_id, method=method, params=params
            )
            await publish_frame(self._publish, self._topic, self._sealer, command, event, "request")
            try:
                answer = await asyncio.wait_for(future, timeout=timeout_s)
            except TimeoutError:
                raise AgentRefusedError(
                    NOT_ANSWERED, f"the agent did not answer {method} within {timeout_s:g}s"
                ) from None
        finally:
            self.forget(request_id)
        return result_of(answer)

    def expect(self, command: CallTool, request_id: str) -> asyncio.Future[UpstreamInputAnswered]:
        """Open `request_id` for an answer of the command's tenant and subject (the caller
        publishes the request itself, and must `forget` it)."""
        future: asyncio.Future[UpstreamInputAnswered] = asyncio.get_running_loop().create_future()
        self._open[request_id] = _Open(
            command.tenant, command.subject, command.stream_id, future, command.command_id
        )
        return future

    def forget(self, request_id: str) -> None:
        """Close a request: a late answer to it is dropped."""
        self._open.pop(request_id, None)

    async def on_reply(self, headers: Mapping[str, str], value: bytes) -> None:
        """Broadcast handler of the reply topic: an agent's answer, for an open request only;
        or word that a command's agent is gone."""
        abandoned = headers.get(ABANDONED_HEADER)
        if abandoned is not None:
            self._abandon(abandoned, headers.get("tenant"), headers.get("subject"))
            return
        request_id = headers.get("request_id", "")
        waiting = self._open.get(request_id)
        if waiting is None or waiting.answer.done():
            return
        if (headers.get("tenant"), headers.get("subject")) != (
            waiting.tenant,
            waiting.subject,
        ):
            log.warning("ignoring an answer to a relayed request from someone else")
            return
        data = json.loads(value)
        if self._sealer is not None:
            metadata = {"tenant": waiting.tenant, "subject": waiting.subject}
            data = await self._sealer.open_event(
                UpstreamInputAnswered.__name__, data, metadata, input_answer_scope(request_id)
            )
        answer = UpstreamInputAnswered.model_validate(data)
        if answer.request_id == request_id and not waiting.answer.done():
            waiting.answer.set_result(answer)

    def _abandon(self, command_id: str, tenant: str | None, subject: str | None) -> None:
        """End the open requests of a command running here whose agent is gone, and refuse its
        later ones; only from the tenant and subject the command runs for."""
        running = self._running.get(command_id)
        if running is None or (tenant, subject) != (running.tenant, running.subject):
            return
        running.gone = True
        for request_id, waiting in list(self._open.items()):
            if waiting.command_id == command_id and not waiting.answer.done():
                error = {"code": NOT_ANSWERED, "message": GONE}
                waiting.answer.set_result(UpstreamInputAnswered(request_id=request_id, error=error))
