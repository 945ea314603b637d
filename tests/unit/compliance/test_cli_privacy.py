"""The privacy and retention commands on an embedded data directory (alice and bob of acme
have events, see test_cli_compliance)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from mcp_ledger.cli.app import app
from mcp_ledger.settings import Settings
from tests.unit.compliance.test_cli_compliance import MARKER, settings  # noqa: F401 - the shared fixture


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def _lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_an_opted_out_subject_is_not_exported_for_sharing_but_still_for_their_own_access(
    settings: Settings,  # noqa: F811
) -> None:
    assert _lines(_invoke("privacy", "status", "--tenant", "acme", "--subject", "alice")[1]) == [
        {"subject": "alice", "opted_out": False}
    ]
    code, out = _invoke(
        "privacy", "opt-out", "--tenant", "acme", "--subject", "alice", "--requested-by", "dpo"
    )
    assert (code, _lines(out)) == (0, [{"subject": "alice", "opted_out": True}])

    code, out = _invoke("export", "--tenant", "acme", "--subject", "alice", "--for-sharing", "adbroker")
    assert code == 2
    assert "opted out" in out
    assert MARKER not in out
    code, out = _invoke("export", "--tenant", "acme", "--subject", "alice")
    assert code == 0
    assert MARKER in out  # the subject's own access request
    code, out = _invoke("audit", "--subject", "alice", "--json")
    refused = [row for row in _lines(out) if row["event_type"] == "SharingRefused"]
    assert [row["data"] for row in refused] == [
        {"channel": "export:adbroker", "requested_by": "cli", "at": refused[0]["data"]["at"]}
    ]
    assert _invoke("privacy", "opt-in", "--tenant", "acme", "--subject", "alice")[0] == 0
    assert _invoke("export", "--tenant", "acme", "--subject", "alice", "--for-sharing", "adbroker")[0] == 0


def test_retention_erases_only_tenants_with_a_policy_once_and_a_dry_run_erases_nobody(
    settings: Settings,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LEDGER_SUBJECT_RETENTION_DAYS", json.dumps({"globex": 0}))
    assert _lines(_invoke("retention", "run", "--json")[1]) == []  # acme keeps data: no policy
    monkeypatch.setenv("LEDGER_SUBJECT_RETENTION_DAYS", json.dumps({"acme": 3650}))
    assert _lines(_invoke("retention", "run", "--json")[1]) == []  # nobody inactive for ten years

    monkeypatch.setenv("LEDGER_SUBJECT_RETENTION_DAYS", json.dumps({"*": 0}))
    code, out = _invoke("retention", "run", "--dry-run", "--json")
    planned = _lines(out)
    assert code == 0
    assert [(row["subject"], row["erased"]) for row in planned] == [("alice", False), ("bob", False)]
    assert MARKER in _invoke("export", "--tenant", "acme", "--subject", "alice")[1]

    code, out = _invoke("retention", "run", "--json")
    erased = _lines(out)
    assert code == 0
    assert [(row["subject"], row["erased"], row["keys_destroyed"]) for row in erased] == [
        ("alice", True, 1),
        ("bob", True, 1),
    ]
    assert [row["erasure_id"] for row in erased] == [row["erasure_id"] for row in planned]
    assert MARKER not in _invoke("export", "--tenant", "acme", "--subject", "alice")[1]
    assert _lines(_invoke("retention", "run", "--json")[1]) == []  # idempotent
    code, out = _invoke("audit", "--subject", "bob", "--json")
    assert [
        row["data"]["requested_by"] for row in _lines(out) if row["event_type"] == "ErasureCompleted"
    ] == ["retention"]
