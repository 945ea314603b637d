"""Privacy commands of `mcp-ledger`: CCPA opt-outs (privacy opt-out / opt-in / status) and
subject retention (retention run).

Opt-outs are written straight to the event store (shared by every worker; the outbox relay
publishes them), so they work the same embedded and distributed. `retention run` finds the
subjects whose retention ran out (LEDGER_SUBJECT_RETENTION_DAYS) and erases each through the
ordinary erasure path: on ledger.compliance with Kafka, against the store embedded. Each
command is one exception boundary printing a clear message. Holds no logic of its own.
"""

from __future__ import annotations

import json
import tempfile
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from mcp_ledger.bench.blobs import run_blob_bench
from mcp_ledger.cli.compliance import (
    SubjectOpt,
    TenantOpt,
    _prepared,
    _run,
    direct_erasure_handler,
    erase_on_bus,
)
from mcp_ledger.consumers.compliance.privacy import PrivacyChoices
from mcp_ledger.consumers.compliance.retention import Due, RetentionPolicy, due_subjects
from mcp_ledger.domain.commands import CallTool
from mcp_ledger.domain.compliance.privacy import ADMIN_OPT_OUT_TOOL
from mcp_ledger.eventstore.activity_sql import SqlSubjectActivity
from mcp_ledger.eventstore.sql import create_store_engine, open_event_store
from mcp_ledger.settings import Settings

console = Console(stderr=True)
privacy_app = typer.Typer(help="CCPA opt-outs of the sale or sharing of personal information.")
retention_app = typer.Typer(help="Erase subjects inactive for longer than their tenant's retention.")

RequestedBy = Annotated[str, typer.Option(help="who asks (recorded)")]


# ---------------------------------------------------------------- privacy
async def _choose(settings: Settings, tenant: str, subject: str, opt_out: bool | None, by: str) -> bool:
    store = await open_event_store(settings.store_url)
    try:
        choices = PrivacyChoices(store)
        if opt_out is None:
            return await choices.opted_out(tenant, subject)
        request = CallTool(tenant=tenant, subject=by, tool_name=ADMIN_OPT_OUT_TOOL)
        return await choices.record(request, subject, opt_out, via="cli")
    finally:
        await store.close()


def _show(subject: str, opted_out: bool) -> None:
    typer.echo(json.dumps({"subject": subject, "opted_out": opted_out}))


def opt_out(tenant: TenantOpt, subject: SubjectOpt, requested_by: RequestedBy = "cli") -> None:
    """Record that the subject opts out: third-party tools and exports for sharing refuse their data."""
    _show(subject, _run(_choose(_prepared(), tenant, subject, True, requested_by)))


def opt_in(tenant: TenantOpt, subject: SubjectOpt, requested_by: RequestedBy = "cli") -> None:
    """Record that the subject withdrew their opt-out."""
    _show(subject, _run(_choose(_prepared(), tenant, subject, False, requested_by)))


def status(tenant: TenantOpt, subject: SubjectOpt) -> None:
    """Whether the subject has opted out."""
    _show(subject, _run(_choose(_prepared(), tenant, subject, None, "cli")))


# ---------------------------------------------------------------- retention
async def _due(settings: Settings, tenant: str | None) -> list[Due]:
    activity = SqlSubjectActivity(create_store_engine(settings.store_url), owns_engine=True)
    try:
        policy = RetentionPolicy(settings.subject_retention_days)
        return await due_subjects(activity, policy, datetime.now(UTC), tenant=tenant)
    finally:
        await activity.close()


async def _erase_due(settings: Settings, due: list[Due], wait: float) -> list[dict[str, Any]]:
    commands = [entry.command for entry in due]
    if not settings.embedded:
        return await erase_on_bus(settings, commands, wait)
    async with AsyncExitStack() as stack:
        handler = await direct_erasure_handler(settings, stack)
        return [(await handler.handle(command)).model_dump(mode="json") for command in commands]


def retention_run(
    tenant: Annotated[str | None, typer.Option(help="only this tenant")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="list who is due; erase nobody")] = False,
    timeout: Annotated[float, typer.Option(help="seconds to wait for each erasure on Kafka")] = 120.0,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table")] = False,
) -> None:
    """Erase every subject whose last activity is older than their tenant's retention
    (LEDGER_SUBJECT_RETENTION_DAYS, e.g. {"acme": 365, "*": 730}). Idempotent: erased subjects
    are never found again, and a run stopped halfway resumes the same erasures."""
    settings = _prepared()
    due = _run(_due(settings, tenant))
    records = [] if dry_run or not due else _run(_erase_due(settings, due, timeout))
    rows = [
        {
            "tenant": entry.activity.tenant,
            "subject": entry.activity.subject,
            "last_active": entry.activity.last_active.isoformat(),
            "retention_days": entry.retention_days,
            "erasure_id": entry.command.command_id,
            "erased": bool(records),
            "keys_destroyed": records[i]["keys_destroyed"] if records else 0,
        }
        for i, entry in enumerate(due)
    ]
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row))
        return
    table = Table(title=f"retention: {len(rows)} subjects due" + (" (dry run)" if dry_run else ""))
    for column in ("tenant", "subject", "last active", "days", "erased"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["tenant"],
            row["subject"],
            row["last_active"][:19],
            str(row["retention_days"]),
            str(row["erased"]),
        )
    Console().print(table)


# ---------------------------------------------------------------- bench blobs
def bench_blobs(
    count: Annotated[int, typer.Option(min=1, max=100_000, help="puts and gets per size")] = 200,
    subjects: Annotated[
        int, typer.Option(min=1, max=1_000_000, help="subjects the retention scan reads")
    ] = 10_000,
    output: Annotated[Path, typer.Option(help="where to write the JSON report")] = Path("bench-blobs.json"),
) -> None:
    """Blob put/get p50/p99 in the clear and sealed with the subject's key (1 KiB, 64 KiB, 1 MiB),
    and the time of one retention scan over SUBJECTS subjects, in a temporary directory."""
    with tempfile.TemporaryDirectory() as scratch:
        report = _run(run_blob_bench(Path(scratch), count, subjects))
    output.write_text(json.dumps(report, indent=2) + "\n")
    table = Table(title=f"blobs ({count} each)")
    for column in ("size", "put plain", "put sealed", "get plain", "get sealed"):
        table.add_column(column, justify="right")
    for size, rounds in report["sizes"].items():
        cells = [
            f"{rounds[kind][op]['p50_ms']:.2f} / {rounds[kind][op]['p99_ms']:.2f} ms"
            for op in ("put", "get")
            for kind in ("plain", "sealed")
        ]
        table.add_row(f"{int(size) // 1024} KiB", *cells)
    Console().print(table)
    scan = report["retention_scan"]
    console.print(
        f"p50 / p99 per operation; retention scan: {scan['due']} due of {scan['subjects']}+ subjects "
        f"in {scan['ms']:.1f} ms; written to {output}"
    )


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add the privacy and retention commands (and bench blobs) to the `mcp-ledger` app."""
    bench_app.command("blobs")(bench_blobs)
    privacy_app.command("opt-out")(opt_out)
    privacy_app.command("opt-in")(opt_in)
    privacy_app.command("status")(status)
    app.add_typer(privacy_app, name="privacy")
    retention_app.command("run")(retention_run)
    app.add_typer(retention_app, name="retention")
