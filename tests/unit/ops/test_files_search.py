"""The erasure proofs' file search (tests/support/files.py) finds a marker however plainly it
was written: raw, UTF-16, base64 at every alignment in either alphabet, in a file's path, in a
-wal file beside a database; and nothing where it is absent."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from tests.support.files import files_containing, files_under

MARKER = "marker-5f0c7e2a9b1d4c36a8e0f2b4d6c8e0a1"


@pytest.mark.parametrize(
    "content",
    [
        MARKER.encode(),
        MARKER.encode("utf-16-le"),
        *(base64.b64encode(b"x" * prefix + MARKER.encode() + b"y") for prefix in range(3)),
        *(base64.urlsafe_b64encode(b"\xff\xfe" * prefix + MARKER.encode()) for prefix in range(3)),
    ],
    ids=["raw", "utf-16", "base64+0", "base64+1", "base64+2", "urlsafe+0", "urlsafe+2", "urlsafe+4"],
)
def test_a_marker_written_plainly_is_found(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "ledger.db-wal").write_bytes(b"\x00header" + content + b"\x00trailer")
    (tmp_path / "ledger.db").write_bytes(b"nothing here")
    assert files_containing(tmp_path, MARKER) == [tmp_path / "ledger.db-wal"]


def test_a_marker_in_a_path_is_found_and_files_in_subdirectories_are_searched(tmp_path: Path) -> None:
    (tmp_path / "blobs" / f"notes {MARKER}").mkdir(parents=True)
    (tmp_path / "blobs" / f"notes {MARKER}" / "data").write_bytes(b"sealed")
    (tmp_path / "blobs" / "other").write_bytes(MARKER.encode())
    assert files_containing(tmp_path, MARKER) == [
        tmp_path / "blobs" / f"notes {MARKER}" / "data",
        tmp_path / "blobs" / "other",
    ]
    assert len(files_under(tmp_path)) == 2


def test_a_directory_without_the_marker_has_no_file_holding_it(tmp_path: Path) -> None:
    other = MARKER.replace("a", "b").encode()  # another marker, plainly and in base64
    (tmp_path / "ledger.db").write_bytes(other + base64.b64encode(other) + MARKER[:12].encode())
    assert files_containing(tmp_path, MARKER) == []
