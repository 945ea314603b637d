"""resources/read of a signed blob pointer: every check, then the blob's contents.

Order matters: the signature is checked before anything else is believed (the URI is
attacker-controlled), one-time use is claimed only for a pointer that passed every other
check (so a foreign reader cannot burn someone's pointer), and only then is the blob read.
A blob of an erased subject answers "erased", not its (sealed, unreadable) contents.
"""

from __future__ import annotations

import base64
import time

import mcp_types as types

from mcp_ledger.blobs.ports import BlobStore, ReplayGuard
from mcp_ledger.crypto.cipher import DecryptionError
from mcp_ledger.crypto.pointers import PointerError, PointerSigner
from mcp_ledger.mcp_api.auth.identity import Identity


class BlobReader:
    def __init__(self, signer: PointerSigner, blobs: BlobStore, replays: ReplayGuard) -> None:
        self._signer = signer
        self._blobs = blobs
        self._replays = replays

    async def read(self, uri: str, identity: Identity, session_id: str | None) -> types.ReadResourceResult:
        """The blob behind a pointer.

        Raises:
            PointerError: malformed, tampered, expired, foreign, replayed, or the blob is gone.
        """
        now = time.time()
        pointer = self._signer.check(
            uri, tenant=identity.tenant, subject=identity.subject, session_id=session_id, now=now
        )
        if pointer.nonce is not None and not await self._replays.first_use(
            pointer.nonce, pointer.expires_at - now
        ):
            raise PointerError("replayed", "this one-time pointer was already read")
        try:
            blob = await self._blobs.get(pointer.tenant, pointer.blob_id)
        except DecryptionError as error:
            raise PointerError("unreadable", "the stored document was altered") from error
        if blob is None:
            raise PointerError("gone", "the document behind this pointer no longer exists")
        if blob.erased:
            raise PointerError("erased", "the document behind this pointer was erased (right to erasure)")
        if blob.mime_type.startswith("text/") or blob.mime_type == "application/json":
            content: types.TextResourceContents | types.BlobResourceContents = types.TextResourceContents(
                uri=uri, mime_type=blob.mime_type, text=blob.data.decode("utf-8", errors="replace")
            )
        else:
            content = types.BlobResourceContents(
                uri=uri, mime_type=blob.mime_type, blob=base64.b64encode(blob.data).decode()
            )
        return types.ReadResourceResult(contents=[content])
