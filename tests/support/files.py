"""Every file under a directory, searched for a marker: how erasure proofs look at what a
gateway wrote to disk (the SQLite database and its -wal and -shm files, where recent writes
sit until a checkpoint; the key table; blob files; anything else), as someone holding a copy of
the data directory would.

A marker counts as found in a file when its UTF-8 bytes, its UTF-16 bytes or its base64 text
(at any alignment, standard or URL-safe alphabet) occur in it, or when a file's path names it:
stored "in the clear" includes trivially encoded. Does not decide where to look: the caller
names the directory, and must show the search can find something there (a value known to be
written in the clear), or an empty answer proves nothing.
"""

from __future__ import annotations

import base64
from pathlib import Path


def files_under(directory: Path) -> list[Path]:
    """Every regular file below `directory`, sorted."""
    return sorted(path for path in directory.rglob("*") if path.is_file())


def encodings(marker: str) -> list[bytes]:
    """The byte strings that betray `marker` (see the module docstring)."""
    raw = marker.encode()
    found = [raw, marker.encode("utf-16-le")]
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + raw)
        # Drop the characters that also encode the padding before and after the marker.
        start, end = (offset * 4 + 2) // 3 + 1, len(encoded) - 4
        if end - start >= 8:
            middle = encoded[start:end]
            found += [middle, middle.replace(b"+", b"-").replace(b"/", b"_")]
    return found


def files_containing(directory: Path, marker: str) -> list[Path]:
    """The files below `directory` that hold `marker` in any of its encodings or name it in
    their path, sorted."""
    needles = encodings(marker)
    hits = []
    for path in files_under(directory):
        try:
            content = path.read_bytes()
        except FileNotFoundError:  # a journal removed between the listing and the read
            continue
        if marker in str(path.relative_to(directory)) or any(needle in content for needle in needles):
            hits.append(path)
    return hits
