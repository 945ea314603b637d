"""Compliance commands of `mcp-ledger`: keys rotate, erase, export, audit, audit verify.

Each command is one exception boundary printing a clear message. `erase` publishes on
ledger.compliance and waits for the ErasureCompleted record when LEDGER_BUS names Kafka; in
the embedded mode it runs the erasure directly against the store (see its help). Does not
hold compliance logic (consumers/ and crypto/ do) beyond presenting it.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from mcp_ledger.bench.erase import run_erase_bench
from mcp_ledger.consumers.compliance.barrier import LocalBarrier, SubjectCaches
from mcp_ledger.consumers.compliance.erasure import ErasureHandler
from mcp_ledger.consumers.compliance.export import export_subject
from mcp_ledger.consumers.compliance.privacy import PrivacyChoices
from mcp_ledger.consumers.mapping import EventMapper
from mcp_ledger.consumers.tools import ToolExecutionError
from mcp_ledger.crypto.kek import KekRing, parse_keks
from mcp_ledger.crypto.records import RecordSealer
from mcp_ledger.crypto.rotation import KekRotation
from mcp_ledger.crypto.sealing import is_sealed
from mcp_ledger.crypto.sql import SqlKeyStore
from mcp_ledger.domain.commands import CallTool
from mcp_ledger.domain.compliance.erasure import EraseSubject
from mcp_ledger.eventstore.audit import SqlAuditLog
from mcp_ledger.eventstore.migrations import upgrade_to_head
from mcp_ledger.eventstore.ports import AuditQuery, EventStore, StoredEvent
from mcp_ledger.eventstore.sql import create_store_engine, open_event_store
from mcp_ledger.mcp_api.gateway import CommandGateway
from mcp_ledger.settings import Settings
from mcp_ledger.wiring.bootstrap import make_bus, make_views
from mcp_ledger.wiring.compliance import erasure_purgers, open_blob_store
from mcp_ledger.wiring.plans import make_plan_views
from mcp_ledger.wiring.protection import audit_row, kek_path, kek_rotation, open_key_store

console = Console(stderr=True)
keys_app = typer.Typer(help="Key-encryption keys and per-subject data keys.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit log: query it, verify its hash chain.")

TenantOpt = Annotated[str, typer.Option("--tenant", help="the subject's tenant")]
SubjectOpt = Annotated[str, typer.Option("--subject", help="the subject (the token's sub)")]


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code=2)


def _prepared() -> Settings:
    """Settings with a SQLite store migrated (it is the embedded default's own database)."""
    settings = Settings()
    if settings.store_url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        upgrade_to_head(settings.store_url)
    return settings


def _run(coroutine: Any) -> Any:
    try:
        return asyncio.run(coroutine)
    except typer.Exit:
        raise
    except Exception as error:  # boundary: one clear line instead of a traceback
        raise _fail(f"{type(error).__name__}: {error}") from None


# ---------------------------------------------------------------- keys rotate
async def _rewrap(settings: Settings, ring: KekRing) -> tuple[int, dict[str, int]]:
    keys = SqlKeyStore(create_store_engine(settings.store_url), ring, owns_engine=True)
    try:
        return await keys.rewrap(), await keys.kek_ids_in_use()
    finally:
        await keys.close()


async def _rotate_file(settings: Settings) -> tuple[int, dict[str, int]]:
    keys = open_key_store(settings)
    try:
        retired = await KekRotation(kek_path(settings), keys).retire_old_keks()
        return retired, await keys.kek_ids_in_use()
    finally:
        await keys.close()


def keys_rotate() -> None:
    """Rewrap every data key under a new key-encryption key; events are not touched.

    With a KEK file (the embedded default, or LEDGER_KEK_FILE) a new KEK is generated, every
    key rewrapped under it and the older KEKs dropped from the file (erasures do the same).
    With LEDGER_KEK, put the new KEK first and the old one after it (comma-separated), restart,
    run this, then drop the old one and restart again.
    """
    settings = _prepared()
    if settings.kek:
        ring = KekRing(parse_keks(settings.kek))
        rewrapped, in_use = _run(_rewrap(settings, ring))
        console.print(f"rewrapped {rewrapped} data keys; live keys per KEK id: {in_use}")
        return
    retired, in_use = _run(_rotate_file(settings))
    console.print(f"retired {retired} KEKs; live keys per KEK id: {in_use}")


# ---------------------------------------------------------------- erase
async def erase_on_bus(
    settings: Settings, commands: list[EraseSubject], wait: float
) -> list[dict[str, object]]:
    """Publish erasures on ledger.compliance one after another, each waited for (Kafka).

    Raises:
        CommandTimeoutError: a worker did not complete one within `wait` seconds.
    """
    bus = make_bus(settings)
    gateway = CommandGateway(bus, settings.commands_topic, timeout=wait)
    bus.subscribe(settings.events_topic, gateway.on_event, group=None)
    await bus.start()
    records = []
    try:
        for command in commands:
            event = await gateway.erase(settings.compliance_topic, command)
            data = event["data"]
            assert isinstance(data, dict)
            records.append(data)
    finally:
        await bus.stop()
    return records


async def direct_erasure_handler(settings: Settings, stack: AsyncExitStack) -> ErasureHandler:
    """An erasure handler on the store itself (embedded mode), with every purger; closed by `stack`."""

    async def left_to_the_outbox(_events: object) -> None:
        return None  # the running worker's outbox relay publishes the erasure record

    store = await open_event_store(settings.store_url)
    stack.push_async_callback(store.close)
    keys = open_key_store(settings)
    stack.push_async_callback(keys.close)
    views, plan_views = make_views(settings), make_plan_views(settings)
    stack.push_async_callback(views.close)
    stack.push_async_callback(plan_views.close)
    blobs = open_blob_store(settings, keys, stack)
    purgers = erasure_purgers(settings, stack, views=views, plan_views=plan_views, blobs=blobs)
    # This process caches nothing; a running embedded server's caches are out of its reach.
    barrier = LocalBarrier(SubjectCaches())
    rotation = kek_rotation(settings, keys)
    return ErasureHandler(store, keys, purgers, left_to_the_outbox, barrier=barrier, keks=rotation)


async def _erase_directly(settings: Settings, command: EraseSubject) -> dict[str, object]:
    async with AsyncExitStack() as stack:
        handler = await direct_erasure_handler(settings, stack)
        return (await handler.handle(command)).model_dump(mode="json")


def erase(
    tenant: TenantOpt,
    subject: SubjectOpt,
    requested_by: Annotated[str, typer.Option(help="who asks (recorded)")] = "cli",
    timeout: Annotated[float, typer.Option(help="seconds to wait for completion on Kafka")] = 120.0,
) -> None:
    """Erase a subject: destroy their data key, purge their data, record it (PII-free).

    With LEDGER_BUS=kafka://… the command goes to ledger.compliance and this waits for the
    workers' ErasureCompleted. Embedded (no bus): the erasure runs here, against the store;
    a running embedded server keeps its in-memory views until restarted, so prefer
    POST /admin/erasures on a running server.
    """
    settings = _prepared()
    command = EraseSubject(tenant=tenant, subject=subject, requested_by=requested_by)
    if settings.embedded:
        record = _run(_erase_directly(settings, command))
    else:
        [record] = _run(erase_on_bus(settings, [command], timeout))
    typer.echo(json.dumps(record, indent=2))


# ---------------------------------------------------------------- export
async def _export(settings: Settings, tenant: str, subject: str, recipient: str | None) -> dict[str, Any]:
    store = await open_event_store(settings.store_url)
    audit = SqlAuditLog(create_store_engine(settings.store_url), owns_engine=True)
    keys = open_key_store(settings)
    try:
        if recipient is not None:
            await _check_sharing(store, tenant, subject, recipient)
        return await export_subject(audit, store, EventMapper(RecordSealer(keys)), tenant, subject)
    finally:
        await keys.close()
        await audit.close()
        await store.close()


async def _check_sharing(store: EventStore, tenant: str, subject: str, recipient: str) -> None:
    request = CallTool(tenant=tenant, subject="cli", tool_name="export")
    try:
        await PrivacyChoices(store).check_sharing(
            request, "third_party", f"export:{recipient}", subject=subject
        )
    except ToolExecutionError:
        raise _fail(
            f"{subject} opted out of the sale or sharing of their personal information: "
            "nothing exported for a third party (the refusal is recorded)"
        ) from None


def export(
    tenant: TenantOpt,
    subject: SubjectOpt,
    out: Annotated[Path | None, typer.Option("--out", help="write here instead of stdout")] = None,
    for_sharing: Annotated[
        str | None,
        typer.Option(
            "--for-sharing",
            metavar="RECIPIENT",
            help="the export goes to this third party: refused (and recorded) if the subject opted out",
        ),
    ] = None,
) -> None:
    """Write a JSON bundle of the subject's decrypted history and current session state.

    Without --for-sharing it is the subject's own access request, which an opt-out never stops.
    """
    bundle = _run(_export(_prepared(), tenant, subject, for_sharing))
    text = json.dumps(bundle, indent=2, ensure_ascii=False) + "\n"
    if out is None:
        sys.stdout.write(text)
        return
    out.write_text(text)
    console.print(f"{len(bundle['events'])} events and {len(bundle['sessions'])} sessions written to {out}")


# ---------------------------------------------------------------- audit
def _summary(event: StoredEvent) -> str:
    parts = []
    for name, value in event.data.items():
        if name in {"tool_name", "command_id"}:
            continue
        parts.append(f"{name}=[sealed]" if is_sealed(value) else f"{name}={json.dumps(value)[:40]}")
    return " ".join(parts)


async def _query(settings: Settings, query: AuditQuery) -> list[StoredEvent]:
    audit = SqlAuditLog(create_store_engine(settings.store_url), owns_engine=True)
    try:
        return await audit.query(query)
    finally:
        await audit.close()


def audit(
    ctx: typer.Context,
    tenant: Annotated[str | None, typer.Option(help="only this tenant")] = None,
    subject: Annotated[str | None, typer.Option(help="only this subject")] = None,
    tool: Annotated[str | None, typer.Option(help="only calls of this tool")] = None,
    correlation_id: Annotated[str | None, typer.Option(help="only this correlation id")] = None,
    since: Annotated[
        datetime | None, typer.Option(help="recorded at or after (ISO 8601, UTC if naive)")
    ] = None,
    until: Annotated[datetime | None, typer.Option(help="recorded at or before (ISO 8601)")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000)] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table")] = False,
) -> None:
    """Every command, decision, tool call, denial and erasure, filtered; personal fields stay sealed."""
    if ctx.invoked_subcommand is not None:
        return
    query = AuditQuery(tenant, subject, tool, correlation_id, _utc(since), _utc(until), limit=limit)
    found = _run(_query(_prepared(), query))
    if as_json:
        for event in found:
            typer.echo(json.dumps(audit_row(event), ensure_ascii=False))
        return
    table = Table(title=f"audit log ({len(found)} events)")
    for column in ("pos", "recorded at", "tenant", "subject", "event", "tool", "correlation", "details"):
        table.add_column(column)
    for event in found:
        row = audit_row(event)
        table.add_row(
            str(row["position"]),
            row["recorded_at"][:23],
            str(row["tenant"]),
            str(row["subject"]),
            row["event_type"],
            str(row["tool_name"] or ""),
            str(row["correlation_id"] or "")[:12],
            _summary(event),
        )
    Console().print(table)


def _utc(stamp: datetime | None) -> datetime | None:
    if stamp is None:
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


async def _verify(settings: Settings) -> Any:
    audit_log = SqlAuditLog(create_store_engine(settings.store_url), owns_engine=True)
    try:
        return await audit_log.verify_chain()
    finally:
        await audit_log.close()


def audit_verify() -> None:
    """Recompute the hash chain over the whole log; exit 1 at the first row that breaks it."""
    report = _run(_verify(_prepared()))
    if report.first_broken is None:
        console.print(f"[green]intact:[/green] {report.checked} events chained")
        return
    console.print(
        f"[red]broken at position {report.first_broken}[/red] ({report.reason}); "
        f"{report.checked} events before it verified"
    )
    raise typer.Exit(code=1)


# ---------------------------------------------------------------- bench erase
def bench_erase(
    events: Annotated[int, typer.Option(min=1, max=1_000_000, help="events of the one big subject")] = 10_000,
    subjects: Annotated[
        int, typer.Option(min=1, max=100_000, help="subjects erased one after another")
    ] = 1000,
    output: Annotated[Path, typer.Option(help="where to write the JSON report")] = Path("bench-erase.json"),
) -> None:
    """Time to erase one subject with EVENTS events, and SUBJECTS subjects, on LEDGER_STORE
    (a fresh tenant in it) or, when unset, a SQLite store in a temporary directory."""
    settings = Settings()
    with tempfile.TemporaryDirectory() as scratch:
        url = settings.store or f"sqlite+aiosqlite:///{Path(scratch) / 'bench.db'}"
        upgrade_to_head(url)
        report = _run(run_erase_bench(url, events, subjects, lambda text: console.print(f"… {text}")))
    output.write_text(json.dumps(report, indent=2) + "\n")
    table = Table(title=f"erasure ({report['store']})")
    for column in ("case", "events", "time", "rate"):
        table.add_column(column, justify="right")
    one, many = report["one_subject"], report["many_subjects"]
    table.add_row("1 subject", str(one["events"]), f"{one['erase_ms']:.1f} ms", "")
    table.add_row(
        f"{many['subjects']} subjects",
        str(many["subjects"] * many["events_each"]),
        f"{many['total_s']:.2f} s (p50 {many['p50_ms']:.1f} ms, p99 {many['p99_ms']:.1f} ms)",
        f"{many['subjects_per_s']:.0f} subjects/s",
    )
    Console().print(table)
    console.print(f"erased data unreadable: {report['erased_data_unreadable']}; written to {output}")


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add the compliance commands to the `mcp-ledger` app."""
    app.add_typer(keys_app, name="keys")
    keys_app.command("rotate")(keys_rotate)
    app.command()(erase)
    app.command()(export)
    audit_app.callback(invoke_without_command=True)(audit)
    audit_app.command("verify")(audit_verify)
    app.add_typer(audit_app, name="audit")
    bench_app.command("erase")(bench_erase)
