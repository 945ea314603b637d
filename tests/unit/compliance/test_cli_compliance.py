"""The compliance commands on an embedded data directory: rotate, export, audit, erase."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from mcp_ledger.cli.app import app
from mcp_ledger.consumers.command_handler import CommandHandler
from mcp_ledger.consumers.tools import BUILTIN_RUNNERS
from mcp_ledger.domain.commands import CallTool
from mcp_ledger.domain.tools import builtin_catalog
from mcp_ledger.eventstore.migrations import upgrade_to_head
from mcp_ledger.eventstore.sql import create_store_engine, open_event_store
from mcp_ledger.eventstore.tables import events
from mcp_ledger.settings import Settings
from mcp_ledger.wiring.protection import kek_path, open_sealer

MARKER = "marker-c0ffee42"
SESSION = "session-0001"


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in ("LEDGER_BUS", "LEDGER_STORE", "LEDGER_STATE", "LEDGER_KEK", "LEDGER_KEK_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LEDGER_DATA_DIR", str(tmp_path / "data"))
    made = Settings()
    made.data_dir.mkdir(parents=True)
    upgrade_to_head(made.store_url)
    asyncio.run(_alice_writes_the_marker(made))
    return made


async def _alice_writes_the_marker(settings: Settings) -> None:
    store = await open_event_store(settings.store_url)
    sealer, keys = open_sealer(settings)

    async def ignore(_events: object) -> None:
        return None

    handler = CommandHandler(store, builtin_catalog(), BUILTIN_RUNNERS, ignore, sealer=sealer)
    try:
        for tool, arguments in (("session_open", {}), ("note_set", {"key": "k", "value": MARKER})):
            command = CallTool(
                tenant="acme", subject="alice", session_id=SESSION, tool_name=tool, arguments=arguments
            )
            await handler.handle(command)
        await handler.handle(
            CallTool(tenant="acme", subject="bob", tool_name="echo", arguments={"text": "x"})
        )
    finally:
        await keys.close()
        await store.close()


async def _rows(settings: Settings) -> list[tuple[object, ...]]:
    engine = create_store_engine(settings.store_url)
    async with engine.connect() as conn:
        rows = [tuple(row) for row in (await conn.execute(select(events).order_by(events.c.position))).all()]
    await engine.dispose()
    return rows


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout


def test_rotating_the_kek_rewraps_keys_and_leaves_every_event_row_byte_identical(settings: Settings) -> None:
    before, kek_before = asyncio.run(_rows(settings)), kek_path(settings).read_text()
    code, _ = _invoke("keys", "rotate")
    assert code == 0
    assert asyncio.run(_rows(settings)) == before
    assert kek_path(settings).read_text() != kek_before
    assert len(kek_path(settings).read_text().split()) == 1  # the old KEK is gone once unused
    code, out = _invoke("export", "--tenant", "acme", "--subject", "alice")
    assert code == 0
    assert MARKER in out  # still readable under the new KEK


def test_export_bundles_the_subjects_opened_history_and_session_state(
    settings: Settings, tmp_path: Path
) -> None:
    out = tmp_path / "alice.json"
    code, _ = _invoke("export", "--tenant", "acme", "--subject", "alice", "--out", str(out))
    bundle = json.loads(out.read_text())
    assert code == 0
    assert (bundle["tenant"], bundle["subject"]) == ("acme", "alice")
    assert bundle["sessions"] == [
        {
            "session_id": SESSION,
            "opened_at": bundle["sessions"][0]["opened_at"],
            "notes": {"k": MARKER},
            "calls_succeeded": 2,
            "calls_failed": 0,
        }
    ]
    assert "SessionNoteWritten" in [e["event_type"] for e in bundle["events"]]
    assert "bob" not in json.dumps(bundle)


def test_audit_filters_by_subject_and_never_shows_personal_fields(settings: Settings) -> None:
    code, out = _invoke("audit", "--tenant", "acme", "--subject", "alice", "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0
    assert {row["subject"] for row in rows} == {"alice"}
    assert "note_set" in {row["tool_name"] for row in rows}
    assert MARKER not in out
    code, out = _invoke("audit", "--tool", "echo", "--json")
    assert [json.loads(line)["subject"] for line in out.splitlines()] == ["bob", "bob"]


def test_audit_verify_passes_then_finds_a_row_edited_in_the_database(settings: Settings) -> None:
    assert _invoke("audit", "verify")[0] == 0

    async def forge() -> int:
        engine = create_store_engine(settings.store_url)
        async with engine.begin() as conn:
            position = (
                (await conn.execute(select(events.c.position).where(events.c.version == 2))).scalars().first()
            )
            await conn.execute(
                update(events).where(events.c.position == position).values(event_type="Forged")
            )
        await engine.dispose()
        assert isinstance(position, int)
        return position

    position = asyncio.run(forge())
    result = CliRunner().invoke(app, ["audit", "verify"])
    assert result.exit_code == 1
    assert f"broken at position {position}" in result.output


def test_erase_in_embedded_mode_shreds_the_subject_and_records_it(settings: Settings) -> None:
    code, out = _invoke("erase", "--tenant", "acme", "--subject", "alice", "--requested-by", "dpo")
    record = json.loads(out)
    assert code == 0
    assert (record["keys_destroyed"], record["requested_by"]) == (1, "dpo")
    code, exported = _invoke("export", "--tenant", "acme", "--subject", "alice")
    assert MARKER not in exported
    assert '"$erased": true' in exported
    assert _invoke("audit", "verify")[0] == 0  # shredding keys never breaks the chain


def test_audit_lists_the_erasure(settings: Settings) -> None:
    _invoke("erase", "--tenant", "acme", "--subject", "alice")
    code, out = _invoke("audit", "--subject", "alice", "--json")
    assert code == 0
    types = [json.loads(line)["event_type"] for line in out.splitlines()]
    assert types[-3:] == ["ErasureStarted", "SubjectKeysDestroyed", "ErasureCompleted"]
