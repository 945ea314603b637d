"""Retiring KEKs on a KEK file shared by processes: no key is lost to a concurrent rotation,
a key created meanwhile follows the new KEK, a KEK the operator gives is left alone, and a
process with another KEK is named, not crashed on."""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mcp_ledger.crypto.cipher import new_key
from mcp_ledger.crypto.kek import Kek, KekRing, parse_keks, write_kek_file
from mcp_ledger.crypto.ports import KekMismatchError
from mcp_ledger.crypto.rotation import KekRotation, RotationLockTimeoutError
from mcp_ledger.crypto.sql import SqlKeyStore
from mcp_ledger.eventstore.migrations import upgrade_to_head_async
from mcp_ledger.eventstore.sql import create_store_engine


def _keks(path: Path) -> list[Kek]:
    return parse_keks(path.read_text())


def _raw(path: Path) -> bytes:
    return path.read_bytes()


@pytest.fixture
async def url(tmp_path: Path) -> str:
    database = f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"
    await upgrade_to_head_async(database)
    return database


@pytest.fixture
def kek_file(tmp_path: Path) -> Path:
    path = tmp_path / "kek"
    write_kek_file(path, [Kek(new_key())])
    return path


@pytest.fixture
async def processes(url: str, kek_file: Path) -> AsyncIterator[tuple[SqlKeyStore, SqlKeyStore]]:
    """Two processes' key stores on one database and one KEK file."""
    one = SqlKeyStore(create_store_engine(url), KekRing.from_file(kek_file), owns_engine=True)
    two = SqlKeyStore(create_store_engine(url), KekRing.from_file(kek_file), owns_engine=True)
    yield one, two
    await one.close()
    await two.close()


async def test_a_rotation_leaves_only_the_new_kek_and_every_key_readable_by_every_process(
    processes: tuple[SqlKeyStore, SqlKeyStore], kek_file: Path
) -> None:
    one, two = processes
    keys = [await one.active_key("acme", f"s{i}") for i in range(20)]
    before = _keks(kek_file)

    assert await KekRotation(kek_file, one).retire_old_keks() == 1

    after = _keks(kek_file)
    assert len(after) == 1
    assert after[0].kek_id != before[0].kek_id
    assert set(await one.kek_ids_in_use()) == {after[0].kek_id}
    for i, key in enumerate(keys):  # the other process re-reads the file: the new KEK unwraps
        assert await two.key("acme", f"s{i}", key.key_id) == key


async def test_a_process_kept_on_a_retired_kek_is_told_so(url: str, kek_file: Path) -> None:
    ring = KekRing(_keks(kek_file))  # read once, never again
    stale = SqlKeyStore(create_store_engine(url), ring, owns_engine=True)
    rotating = SqlKeyStore(create_store_engine(url), KekRing.from_file(kek_file), owns_engine=True)
    try:
        created = await rotating.active_key("acme", "alice")
        await KekRotation(kek_file, rotating).retire_old_keks()
        with pytest.raises(KekMismatchError, match="tenant acme"):
            await stale.key("acme", "alice", created.key_id)
    finally:
        await stale.close()
        await rotating.close()


async def test_a_rotation_waits_while_another_process_holds_the_kek_files_lock(
    processes: tuple[SqlKeyStore, SqlKeyStore], kek_file: Path
) -> None:
    one, _ = processes
    await one.active_key("acme", "alice")
    before = _raw(kek_file)
    lock = os.open(kek_file.with_name("kek.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)  # another process's rotation is under way
    try:
        with pytest.raises(RotationLockTimeoutError):
            await KekRotation(kek_file, one, lock_timeout=0.3).retire_old_keks()
        assert _raw(kek_file) == before  # it wrote nothing while waiting
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
        os.close(lock)
    assert await KekRotation(kek_file, one).retire_old_keks() == 1


async def test_a_key_wrapped_under_a_kek_retired_before_its_insert_follows_the_new_one(
    url: str, kek_file: Path, tmp_path: Path
) -> None:
    late = SqlKeyStore(create_store_engine(url), KekRing.from_file(kek_file), owns_engine=True)
    database = sqlite3.connect(tmp_path / "ledger.db", isolation_level=None)
    try:
        database.execute("BEGIN IMMEDIATE")  # holds the write lock: the key's insert waits
        creating = asyncio.create_task(late.active_key("acme", "newcomer"))
        await asyncio.sleep(0.3)  # wrapped under the current KEK, now waiting to insert
        write_kek_file(kek_file, [Kek(new_key())])  # meanwhile another process rotated, retired it
        database.execute("COMMIT")
        created = await asyncio.wait_for(creating, 10)
        current = _keks(kek_file)[0]
        assert await late.kek_ids_in_use() == {current.kek_id: 1}
        fresh = SqlKeyStore(create_store_engine(url), KekRing.from_file(kek_file), owns_engine=True)
        assert await fresh.key("acme", "newcomer", created.key_id) == created
        await fresh.close()
    finally:
        database.close()
        await late.close()


async def test_a_kek_the_operator_gives_is_not_rotated(url: str) -> None:
    keys = SqlKeyStore(create_store_engine(url), KekRing([Kek(new_key())]), owns_engine=True)
    try:
        assert await KekRotation(None, keys).retire_old_keks() == 0
    finally:
        await keys.close()


async def test_keys_wrapped_by_another_processes_kek_are_named_and_left_alone(
    url: str, kek_file: Path
) -> None:
    foreign = SqlKeyStore(create_store_engine(url), KekRing([Kek(new_key())]), owns_engine=True)
    ours = SqlKeyStore(create_store_engine(url), KekRing.from_file(kek_file), owns_engine=True)
    try:
        theirs = await foreign.active_key("acme", "bob")
        await ours.active_key("acme", "alice")
        assert set(await ours.unreadable_keks()) == {foreign.ring.current.kek_id}
        with pytest.raises(KekMismatchError, match=r"tenant acme.*LEDGER_KEK"):
            await ours.key("acme", "bob", theirs.key_id)

        assert await KekRotation(kek_file, ours).retire_old_keks() == 1  # does not fail on bob…

        assert await foreign.key("acme", "bob", theirs.key_id) == theirs  # …nor touch his key
    finally:
        await foreign.close()
        await ours.close()
