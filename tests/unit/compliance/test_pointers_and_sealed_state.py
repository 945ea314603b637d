"""Signed blob pointers and sealed state: every way a token can be wrong is caught."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from mcp_ledger.blobs.memory import MemoryReplayGuard
from mcp_ledger.crypto.cipher import new_key
from mcp_ledger.crypto.kek import Kek, KekRing
from mcp_ledger.crypto.pointers import PointerError, PointerSigner
from mcp_ledger.crypto.sealed import MAX_SEALED_BYTES, SealedStateError, StateSealer
from mcp_ledger.crypto.secret import derive_key
from mcp_ledger.crypto.sql import SqlKeyStore
from mcp_ledger.eventstore.migrations import upgrade_to_head_async
from mcp_ledger.eventstore.sql import create_store_engine

KEY = derive_key(b"k" * 32, "pointers/v1")
NOW = 1_000_000.0


def _issue(signer: PointerSigner, *, one_time: bool = False) -> str:
    return signer.issue(
        blob_id="b1",
        tenant="acme",
        subject="alice",
        session_id="sess-0001",
        expires_at=NOW + 600,
        one_time=one_time,
    )


def _check(signer: PointerSigner, uri: str, **overrides: object) -> object:
    caller: dict[str, object] = {"tenant": "acme", "subject": "alice", "session_id": "sess-0001", "now": NOW}
    caller.update(overrides)
    return signer.check(uri, **caller)  # type: ignore[arg-type]


def _code(signer: PointerSigner, uri: str, **overrides: object) -> str:
    with pytest.raises(PointerError) as caught:
        _check(signer, uri, **overrides)
    return caught.value.code


def test_a_pointer_opens_for_its_subject_in_its_session_before_it_expires() -> None:
    signer = PointerSigner(KEY)
    assert _check(signer, _issue(signer)) is not None


def test_a_pointer_never_names_the_subject() -> None:
    assert "alice" not in _issue(PointerSigner(KEY))


@pytest.mark.parametrize(
    ("edit", "code"),
    [
        (lambda uri: uri.replace("b1?", "b2?"), "tampered"),
        (lambda uri: uri.replace("e=1000600", "e=9999999"), "tampered"),
        (lambda uri: uri.replace("t=acme", "t=other"), "tampered"),
        (lambda uri: uri.split("&sig=")[0], "malformed"),
        (lambda uri: "ledger://sessions/x", "malformed"),
    ],
)
def test_an_altered_pointer_is_refused(edit: object, code: str) -> None:
    signer = PointerSigner(KEY)
    assert _code(signer, edit(_issue(signer))) == code  # type: ignore[operator]


def test_a_pointer_signed_with_another_key_is_tampered() -> None:
    assert _code(PointerSigner(KEY), _issue(PointerSigner(b"x" * 32))) == "tampered"


def test_an_expired_pointer_is_refused() -> None:
    signer = PointerSigner(KEY)
    assert _code(signer, _issue(signer), now=NOW + 601) == "expired"


def test_a_pointer_is_refused_to_another_subject_tenant_or_session() -> None:
    signer = PointerSigner(KEY)
    uri = _issue(signer)
    assert _code(signer, uri, subject="mallory") == "foreign_subject"
    assert _code(signer, uri, tenant="evil") == "foreign_subject"
    assert _code(signer, uri, session_id="sess-0002") == "foreign_session"
    assert _code(signer, uri, session_id=None) == "foreign_session"


async def test_a_one_time_nonce_is_accepted_once() -> None:
    guard = MemoryReplayGuard()
    assert await guard.first_use("n1", 60)
    assert not await guard.first_use("n1", 60)
    assert await guard.first_use("n2", 60)


@pytest.fixture
async def sealer(tmp_path: Path) -> AsyncIterator[StateSealer]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"
    await upgrade_to_head_async(url)
    keys = SqlKeyStore(create_store_engine(url), KekRing([Kek(new_key())]), owns_engine=True)
    yield StateSealer(keys, derive_key(b"k" * 32, "sealed-state/v2"))
    await keys.close()


async def test_sealed_state_round_trips_for_its_subject(sealer: StateSealer) -> None:
    token = await sealer.seal({"step": 3}, tenant="acme", subject="alice", expires_at=NOW + 60)
    assert await sealer.open(token, tenant="acme", subject="alice", now=NOW) == {"step": 3}
    assert "step" not in token


async def test_sealed_state_is_refused_to_another_subject_and_when_altered_or_expired(
    sealer: StateSealer,
) -> None:
    token = await sealer.seal({"step": 3}, tenant="acme", subject="alice", expires_at=NOW + 60)
    flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    await sealer.seal({"own": 1}, tenant="acme", subject="mallory", expires_at=NOW + 60)  # has a key
    cases: dict[str, Callable[[], Awaitable[object]]] = {
        "tampered": lambda: sealer.open(flipped, tenant="acme", subject="alice", now=NOW),
        "foreign": lambda: sealer.open(token, tenant="acme", subject="mallory", now=NOW),
        "other_tenant": lambda: sealer.open(token, tenant="evil", subject="alice", now=NOW),
        "expired": lambda: sealer.open(token, tenant="acme", subject="alice", now=NOW + 61),
        "malformed": lambda: sealer.open("v2.abc", tenant="acme", subject="alice", now=NOW),
        "old_format": lambda: sealer.open("v1." + token[3:], tenant="acme", subject="alice", now=NOW),
    }
    codes: dict[str, str] = {}
    for name, attempt in cases.items():
        with pytest.raises(SealedStateError) as caught:
            await attempt()
        codes[name] = caught.value.code
    assert codes == {
        "tampered": "tampered",
        "foreign": "tampered",
        "other_tenant": "tampered",
        "expired": "expired",
        "malformed": "malformed",
        "old_format": "malformed",
    }


async def test_sealed_state_of_an_erased_subject_is_refused_as_erased(sealer: StateSealer) -> None:
    token = await sealer.seal({"step": 3}, tenant="acme", subject="alice", expires_at=NOW + 60)
    await sealer.keys.destroy("acme", "alice")
    with pytest.raises(SealedStateError) as caught:
        await sealer.open(token, tenant="acme", subject="alice", now=NOW)
    assert caught.value.code == "erased"
    again = await sealer.seal({"step": 4}, tenant="acme", subject="alice", expires_at=NOW + 60)
    assert await sealer.open(again, tenant="acme", subject="alice", now=NOW) == {"step": 4}


async def test_sealed_state_over_64_kb_is_refused(sealer: StateSealer) -> None:
    with pytest.raises(SealedStateError, match="64 KB"):
        await sealer.seal("x" * MAX_SEALED_BYTES, tenant="acme", subject="alice", expires_at=NOW + 60)
    with pytest.raises(SealedStateError, match="64 KB"):
        await sealer.open("v2." + "A" * MAX_SEALED_BYTES, tenant="acme", subject="alice", now=NOW)
