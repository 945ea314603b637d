"""Pointer arguments of registered tools: a resource_link URI in, the document it names out.

A tool that declares `pointer_arguments` receives, in each, a signed pointer (blob_put's
output, usually piped from another tool). Before the tool runs, the worker checks it as
resources/read would (signature, expiry, subject, session, one-time use claimed last) and
passes the document's text instead, so the tool's service never sees a pointer and never
reads a document its caller could not.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from mcp_ledger.blobs.ports import BlobStore, ReplayGuard
from mcp_ledger.consumers.tools import ToolExecutionError
from mcp_ledger.crypto.pointers import PointerError, PointerSigner
from mcp_ledger.domain.commands import CallTool


class PointerInputs:
    """Resolves pointer arguments for the command's caller and session."""

    def __init__(self, signer: PointerSigner, blobs: BlobStore, replays: ReplayGuard) -> None:
        self._signer = signer
        self._blobs = blobs
        self._replays = replays

    async def _document(self, uri: Any, command: CallTool) -> str:
        if not isinstance(uri, str):
            raise PointerError("malformed", "a pointer argument must be a resource_link URI")
        now = time.time()
        pointer = self._signer.check(
            uri, tenant=command.tenant, subject=command.subject, session_id=command.session_id, now=now
        )
        if pointer.nonce is not None and not await self._replays.first_use(
            pointer.nonce, pointer.expires_at - now
        ):
            raise PointerError("replayed", "this one-time pointer was already read")
        blob = await self._blobs.get(pointer.tenant, pointer.blob_id)
        if blob is None:
            raise PointerError("gone", "the document behind this pointer no longer exists")
        return blob.data.decode("utf-8", errors="replace")

    async def resolve(self, names: Sequence[str], command: CallTool) -> dict[str, Any]:
        """The command's arguments with each pointer argument replaced by its document.

        Raises:
            ToolExecutionError: a pointer is malformed, tampered, expired, foreign or gone.
        """
        arguments = dict(command.arguments)
        for name in names:
            if name not in arguments:
                continue
            try:
                arguments[name] = await self._document(arguments[name], command)
            except PointerError as error:
                raise ToolExecutionError("pointer_refused", f"{name}: {error} ({error.code})") from None
        return arguments
