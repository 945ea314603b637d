"""The agent's answers to relayed upstream requests, from whichever replica received them.

A 2025-11-25 agent POSTs its JSON-RPC response (to a request the gateway wrote on a call's
stream) to any replica; the session layer hands it here. It is sealed with the answering
subject's key and published on the reply topic, headed by the authenticated tenant and
subject (never the body's claims) and the request id; the worker that asked takes it only
for an open request of that tenant and subject (consumers/upstreams/relay/backchannel.py).
Nothing is stored. It does not know which requests are open: any replica may hold them.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from mcp_ledger.crypto.records import RecordSealer
from mcp_ledger.domain.upstreams.events import ABANDONED_HEADER, UpstreamInputAnswered, input_answer_scope
from mcp_ledger.mcp_api.auth.identity import Identity

Publish = Callable[[str, str, bytes, Mapping[str, str]], Awaitable[None]]
MAX_ID_LENGTH = 64


def is_response(payload: Mapping[str, Any]) -> bool:
    """Whether a POSTed JSON-RPC message is a response (to a request the server sent)."""
    return "method" not in payload and "id" in payload and ("result" in payload or "error" in payload)


class ReplyPublisher:
    """Publishes an agent's JSON-RPC responses for the workers waiting for them."""

    def __init__(self, publish: Publish, topic: str, sealer: RecordSealer | None) -> None:
        self._publish = publish
        self._topic = topic
        self._sealer = sealer

    async def __call__(self, identity: Identity, payload: Mapping[str, Any]) -> bool:
        """Relay one response POSTed by `identity`; False when it cannot answer a relayed
        request (bad id).

        Raises:
            BusError: the bus refused it.
        """
        return await self.answer(identity.tenant, identity.subject, payload)

    async def answer(self, tenant: str, subject: str, payload: Mapping[str, Any]) -> bool:
        """Relay one response for that tenant and subject (the gateway's own refusals too).

        Raises:
            BusError: the bus refused it.
        """
        request_id = payload.get("id")
        if not isinstance(request_id, str) or not 0 < len(request_id) <= MAX_ID_LENGTH:
            return False
        error = payload.get("error")
        event = UpstreamInputAnswered(
            request_id=request_id,
            result=None if error is not None else payload.get("result"),
            error=error if isinstance(error, dict) else None,
        )
        data = event.model_dump(mode="json")
        if self._sealer is not None:
            metadata = {"tenant": tenant, "subject": subject}
            data = await self._sealer.seal_event(
                UpstreamInputAnswered.__name__, data, metadata, input_answer_scope(request_id)
            )
        headers = {"request_id": request_id, "tenant": tenant, "subject": subject}
        await self._publish(self._topic, request_id, json.dumps(data).encode(), headers)
        return True

    async def abandon(self, tenant: str, subject: str, command_id: str) -> None:
        """Tell the worker running `command_id` that its agent's request ended unanswered, so
        it stops waiting for answers nobody can give (relay/backchannel.py).

        Raises:
            BusError: the bus refused it.
        """
        headers = {ABANDONED_HEADER: command_id, "tenant": tenant, "subject": subject}
        await self._publish(self._topic, command_id, b"{}", headers)
