"""Runners of the state tools: closing a session, blobs behind signed pointers, sealed state.

They need collaborators (blob store, pointer signer, state sealer), so they are built by
`state_runners` at wiring time rather than listed in BUILTIN_RUNNERS. A re-run command
(redelivery after a crash) writes the same blob id, so a retry never leaves a second copy;
the id is derived from the command's tenant, subject and id, so nobody else's command can
name (and overwrite) it. Sealed state is bound to the caller's data key (crypto/sealed.py):
after an erasure an old token fails with the code `erased`.
"""

from __future__ import annotations

import time

from mcp_ledger.blobs.ports import Blob, BlobStore
from mcp_ledger.consumers.tools import (
    ToolExecutionError,
    ToolInvocation,
    ToolOutcome,
    ToolRunner,
    structured_outcome,
)
from mcp_ledger.crypto.pointers import PointerSigner
from mcp_ledger.crypto.sealed import SealedStateError, StateSealer
from mcp_ledger.domain.events import SessionClosed
from mcp_ledger.domain.streams import blob_id as derived_blob_id

DEFAULT_SEAL_SECONDS = 3600


async def session_close(call: ToolInvocation) -> ToolOutcome:
    return structured_outcome({"closed": True}, (SessionClosed(reason="client"),))


def state_runners(
    blobs: BlobStore, signer: PointerSigner, sealer: StateSealer, *, pointer_ttl: float
) -> dict[str, ToolRunner]:
    """The state tools' runners bound to their collaborators."""

    async def blob_put(call: ToolInvocation) -> ToolOutcome:
        command = call.command
        assert command.session_id is not None  # the spec needs a session
        arguments = command.arguments
        data = str(arguments["text"]).encode()
        blob_id = derived_blob_id(command.tenant, command.subject, command.command_id)
        mime_type = str(arguments.get("mime_type", "text/plain"))
        await blobs.put(
            Blob(
                blob_id=blob_id,
                tenant=command.tenant,
                subject=command.subject,
                session_id=command.session_id,
                name=str(arguments["name"]),
                mime_type=mime_type,
                data=data,
                created_at=command.issued_at,
            )
        )
        expires_at = int(command.issued_at + pointer_ttl)
        uri = signer.issue(
            blob_id=blob_id,
            tenant=command.tenant,
            subject=command.subject,
            session_id=command.session_id,
            expires_at=expires_at,
            one_time=bool(arguments.get("one_time", False)),
        )
        link = {
            "type": "resource_link",
            "uri": uri,
            "name": str(arguments["name"]),
            "mimeType": mime_type,
            "size": len(data),
        }
        structured = {"uri": uri, "expires_at": expires_at, "size": len(data)}
        return ToolOutcome([link], structured)

    async def state_seal(call: ToolInvocation) -> ToolOutcome:
        command = call.command
        expires_at = command.issued_at + int(command.arguments.get("ttl_seconds", DEFAULT_SEAL_SECONDS))
        try:
            sealed = await sealer.seal(
                command.arguments["state"],
                tenant=command.tenant,
                subject=command.subject,
                expires_at=expires_at,
            )
        except SealedStateError as error:
            raise ToolExecutionError(error.code, str(error)) from error
        return structured_outcome({"sealed": sealed, "expires_at": expires_at})

    async def state_open(call: ToolInvocation) -> ToolOutcome:
        command = call.command
        try:
            state = await sealer.open(
                str(command.arguments["sealed"]),
                tenant=command.tenant,
                subject=command.subject,
                now=time.time(),
            )
        except SealedStateError as error:
            raise ToolExecutionError(error.code, str(error)) from error
        return structured_outcome({"state": state})

    return {
        "session_close": session_close,
        "blob_put": blob_put,
        "state_seal": state_seal,
        "state_open": state_open,
    }
