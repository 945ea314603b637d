"""Blobs as files under one directory: the embedded default.

Layout: {root}/{tenant}/{blob_id}.bin with a {blob_id}.json sidecar for the metadata.
Writes go to a temporary file renamed into place, so a reader never sees half a blob.
Erasure deletes the .bin file and rewrites the sidecar as a tombstone ({"erased": true}, no
name, no mime type). The sealing layer in front (sealed.py) keeps name and mime type sealed in
the sidecar.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from pathlib import Path

from mcp_ledger.blobs.ports import Blob

_SAFE = re.compile(r"^[A-Za-z0-9._-]+$")


def _checked(name: str) -> str:
    if not _SAFE.match(name) or name in {".", ".."}:
        raise ValueError(f"unsafe path component {name!r}")
    return name


def _replace(path: Path, content: bytes) -> None:
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_bytes(content)
    os.replace(temporary, path)


class FileBlobStore:
    def __init__(self, root: Path) -> None:
        self._root = root

    def _paths(self, tenant: str, blob_id: str) -> tuple[Path, Path]:
        folder = self._root / _checked(tenant)
        return folder / f"{_checked(blob_id)}.bin", folder / f"{blob_id}.json"

    async def put(self, blob: Blob) -> None:
        await asyncio.to_thread(self._put, blob)

    def _put(self, blob: Blob) -> None:
        data_path, meta_path = self._paths(blob.tenant, blob.blob_id)
        data_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        meta = {
            "subject": blob.subject,
            "session_id": blob.session_id,
            "name": blob.name,
            "mime_type": blob.mime_type,
            "created_at": blob.created_at,
        }
        for path, content in ((data_path, blob.data), (meta_path, json.dumps(meta).encode())):
            _replace(path, content)

    async def get(self, tenant: str, blob_id: str) -> Blob | None:
        try:
            return await asyncio.to_thread(self._get, tenant, blob_id)
        except ValueError:
            return None

    def _get(self, tenant: str, blob_id: str) -> Blob | None:
        data_path, meta_path = self._paths(tenant, blob_id)
        try:
            meta = json.loads(meta_path.read_text())
            data = b"" if meta.get("erased") else data_path.read_bytes()
        except FileNotFoundError:
            return None
        return Blob(blob_id=blob_id, tenant=tenant, data=data, **meta)

    async def purge_subject(self, tenant: str, subject: str) -> int:
        return await asyncio.to_thread(self._purge, tenant, subject)

    def _purge(self, tenant: str, subject: str) -> int:
        folder = self._root / _checked(tenant)
        count = 0
        for meta_path in folder.glob("*.json") if folder.exists() else ():
            meta = json.loads(meta_path.read_text())
            if meta.get("subject") != subject or meta.get("erased"):
                continue
            meta_path.with_suffix(".bin").unlink(missing_ok=True)
            tombstone = {**meta, "name": "", "mime_type": "", "erased": True}
            _replace(meta_path, json.dumps(tombstone).encode())
            count += 1
        return count

    async def close(self) -> None:
        return None
