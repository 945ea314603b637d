"""Key-encryption keys: where they come from and which one wraps new data keys.

A ring holds the current KEK (wraps everything new) and older ones that are still readable
while a rotation rewraps. KEKs come from LEDGER_KEK (base64, comma-separated, current first)
or a file of base64 lines (current first); the embedded mode generates its file (mode 0600)
on first start. Does not store data keys (sql.py does).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mcp_ledger.crypto.cipher import KEY_BYTES, new_key


class KekError(Exception):
    """No usable key-encryption key: the message says what to configure."""


@dataclass(frozen=True, slots=True)
class Kek:
    """One key-encryption key; its id is a fingerprint, not the key."""

    key: bytes

    @property
    def kek_id(self) -> str:
        return hashlib.sha256(b"mcp-ledger-kek" + self.key).hexdigest()[:16]


def parse_keks(text: str) -> list[Kek]:
    """KEKs from base64 entries separated by commas or newlines, current first.

    Raises:
        KekError: an entry is not base64 of 32 bytes, or there is none.
    """
    entries = [part.strip() for part in text.replace(",", "\n").splitlines() if part.strip()]
    keks = []
    for entry in entries:
        try:
            raw = base64.b64decode(entry, validate=True)
        except binascii.Error as error:
            raise KekError("a key-encryption key is not valid base64") from error
        if len(raw) != KEY_BYTES:
            raise KekError(f"a key-encryption key must be {KEY_BYTES} bytes, got {len(raw)}")
        keks.append(Kek(raw))
    if not keks:
        raise KekError("no key-encryption key given")
    return keks


def encode_keks(keks: Sequence[Kek]) -> str:
    """The file form of a ring: base64 lines, current first."""
    return "".join(base64.b64encode(kek.key).decode() + "\n" for kek in keks)


def write_kek_file(path: Path, keks: Sequence[Kek]) -> None:
    """Replace the KEK file atomically, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(encode_keks(keks))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def ensure_kek_file(path: Path) -> None:
    """Create the KEK file with a fresh key if it does not exist (embedded first start).
    Processes starting together agree: the file is linked into place only if still absent."""
    if path.exists():
        return
    temporary = path.with_name(f"{path.name}.{os.getpid()}.new")
    write_kek_file(temporary, [Kek(new_key())])
    try:
        os.link(temporary, path)
    except FileExistsError:
        pass  # another process won; everyone uses its key
    finally:
        temporary.unlink()


class KekRing:
    """The current KEK and older readable ones; re-reads its file when it meets an unknown id
    (another process rotated)."""

    def __init__(self, keks: Sequence[Kek], source: Path | None = None) -> None:
        if not keks:
            raise KekError("a KEK ring needs at least one key")
        self._keks = list(keks)
        self._source = source
        self._stamp = self._source_stamp()

    def _source_stamp(self) -> tuple[int, int, int] | None:
        # The inode too: a rotation replaces the file twice in quick succession (new KEK added,
        # then the old ones retired), which a coarse modification time alone could miss.
        try:
            found = None if self._source is None else self._source.stat()
        except OSError:
            return None
        return None if found is None else (found.st_ino, found.st_mtime_ns, found.st_size)

    def _refresh(self) -> None:
        # A rotation rewrites the file: new keys must be wrapped by the new current KEK at once.
        stamp = self._source_stamp()
        if self._source is not None and stamp is not None and stamp != self._stamp:
            self._keks, self._stamp = parse_keks(self._source.read_text()), stamp

    @classmethod
    def from_file(cls, path: Path) -> KekRing:
        """The ring in a KEK file.

        Raises:
            KekError: the file is missing or holds no valid key.
        """
        try:
            return cls(parse_keks(path.read_text()), source=path)
        except OSError as error:
            raise KekError(f"cannot read the KEK file {path}: {error.strerror}") from error

    @property
    def current(self) -> Kek:
        self._refresh()
        return self._keks[0]

    @property
    def source(self) -> Path | None:
        return self._source

    @property
    def keks(self) -> tuple[Kek, ...]:
        return tuple(self._keks)

    def find(self, kek_id: str) -> Kek:
        """The KEK with this id.

        Raises:
            KekError: no KEK of the ring (even after re-reading its file) has this id.
        """
        for kek in self._keks:
            if kek.kek_id == kek_id:
                return kek
        self._refresh()
        for kek in self._keks:
            if kek.kek_id == kek_id:
                return kek
        raise KekError(f"no key-encryption key with id {kek_id} is configured")
