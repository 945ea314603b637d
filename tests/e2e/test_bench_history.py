"""`mcp-ledger bench history` on a small scale: every measurement it names is made and
reported (no timing is asserted: benchmarks measure, tests check they measured)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from mcp_ledger.cli.app import app

EMBEDDED = {
    "LEDGER_BUS": "memory://",
    "LEDGER_STORE": "",
    "LEDGER_STATE": "memory://",
    "LEDGER_TOPIC_PREFIX": "",
}


def test_bench_history_reports_the_session_the_listing_and_the_full_store(tmp_path: Path) -> None:
    out = tmp_path / "history.json"
    arguments = ["--earlier", "10", "--tools", "10", "--events", "1000", "--samples", "10"]
    result = CliRunner().invoke(
        app,
        ["bench", "history", *arguments, "--output", str(out)],
        env={**EMBEDDED, "LEDGER_DATA_DIR": str(tmp_path)},
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    (calls,) = report["calls"]
    assert calls["target"] == "embedded"
    history, listing = calls["session_history"], calls["tools_list"]
    assert history["earlier_calls"] == 10
    assert history["new_session"]["p50_ms"] > 0
    assert history["long_session"]["p50_ms"] > 0
    assert listing["registration_refused"] is None
    assert listing["listed"] >= listing["registered"] == 10
    assert listing["raw_http"]["p50_ms"] > 0
    assert listing["answer_bytes"] > 0
    plain = report["plain_listing"]
    assert plain["listed"] == 11  # echo and the ten more asked for
    assert plain["sdk_client"]["p50_ms"] > 0
    assert plain["raw_http"]["p50_ms"] > 0
    (store,) = report["stores"]
    assert store["store"] == "sqlite"
    assert store["stored_events"] == 1000
