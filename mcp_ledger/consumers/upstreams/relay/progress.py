"""Relaying an upstream's progress and log notifications from the worker to the agent's request.

The worker publishes each one on the progress topic, keyed by the call's session stream,
with the command id, tenant and subject in the headers and the message sealed with the
subject's key like event data; the API replica waiting for that command delivers it on
the request's stream (mcp_api/progress.py). Best effort: a lost progress message loses a
notification, never a call.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from mcp_ledger.crypto.records import RecordSealer
from mcp_ledger.domain.commands import CallTool
from mcp_ledger.domain.events import DomainEvent
from mcp_ledger.domain.upstreams.events import UpstreamLogged, UpstreamProgressed

log = logging.getLogger(__name__)

Publish = Callable[[str, str, bytes, Mapping[str, str]], Awaitable[None]]
"""The bus's publish (topic, key, value, headers), handed in by the wiring."""


class BusProgressRelay:
    """Publishes upstream progress and log notifications for the API to relay."""

    def __init__(self, publish: Publish, topic: str, sealer: RecordSealer | None) -> None:
        self._publish = publish
        self._topic = topic
        self._sealer = sealer

    async def __call__(
        self, command: CallTool, progress: float, total: float | None, message: str | None
    ) -> None:
        event = UpstreamProgressed(
            command_id=command.command_id, progress=progress, total=total, message=message
        )
        await self._send(command, event, "progress")

    async def log(self, command: CallTool, level: str, logger: str | None, data: Any) -> None:
        await self._send(
            command,
            UpstreamLogged(command_id=command.command_id, level=level, logger=logger, data=data),
            "log",
        )

    async def _send(self, command: CallTool, event: DomainEvent, kind: str) -> None:
        try:
            await publish_frame(self._publish, self._topic, self._sealer, command, event, kind)
        except Exception as error:  # boundary: best effort, the call goes on
            log.info("%s of %s not relayed: %s", kind, command.command_id, error)


async def publish_frame(
    publish: Publish,
    topic: str,
    sealer: RecordSealer | None,
    command: CallTool,
    event: DomainEvent,
    kind: str,
) -> None:
    """One relayed frame of a call (progress, log or an upstream's request): the event sealed
    with the subject's key, keyed by the call's session stream, headed by the command id,
    tenant, subject and kind the API replica matches on."""
    data = event.model_dump(mode="json")
    metadata = {"tenant": command.tenant, "subject": command.subject}
    if sealer is not None:
        data = await sealer.seal_event(type(event).__name__, data, metadata, command.stream_id)
    headers = {
        "command_id": command.command_id,
        "tenant": command.tenant,
        "subject": command.subject,
        "kind": kind,
    }
    await publish(topic, command.stream_id, json.dumps(data).encode(), headers)
