"""Operations commands and process setup: `mcp-ledger asyncapi`, `projections rebuild`,
logging and tracing.

`configure_process` runs once at the edge of `serve`, `api` and `worker`: the log format
(LEDGER_LOG_FORMAT) and the tracer provider (LEDGER_OTEL_EXPORTER), flushed at exit.
"""

from __future__ import annotations

import asyncio
import atexit
import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
import yaml

from mcp_ledger.bench.observability import run_observability_bench
from mcp_ledger.cli.options import StateOpt, StoreOpt, console, fail, load_settings
from mcp_ledger.consumers.mapping import EventMapper
from mcp_ledger.eventstore.sql import open_event_store
from mcp_ledger.observability.asyncapi import asyncapi_document
from mcp_ledger.observability.logs import configure_logging
from mcp_ledger.observability.tracing import TracingConfigError, configure_tracing
from mcp_ledger.projections.plans.projector import PlanProjector
from mcp_ledger.projections.projector import SessionProjector
from mcp_ledger.projections.registry.projector import RegistryProjector
from mcp_ledger.settings import Settings
from mcp_ledger.wiring.bootstrap import make_registry_views, make_views
from mcp_ledger.wiring.plans import make_plan_views
from mcp_ledger.wiring.protection import open_sealer


class DocumentFormat(StrEnum):
    json = "json"
    yaml = "yaml"


def configure_process(settings: Settings, *, api: bool, worker: bool) -> None:
    """Logging and tracing for a serving process.

    Raises:
        typer.BadParameter: LEDGER_LOG_FORMAT or LEDGER_OTEL_EXPORTER is not understood.
    """
    try:
        configure_logging(settings.log_level, settings.log_format)
        role = "mcp-ledger" if api and worker else ("mcp-ledger-api" if api else "mcp-ledger-worker")
        provider = configure_tracing(settings.otel_exporter, role)
    except (ValueError, TracingConfigError) as error:
        raise typer.BadParameter(str(error)) from None
    if provider is not None:
        atexit.register(provider.shutdown)


def render(document: dict[str, object], document_format: DocumentFormat) -> str:
    if document_format is DocumentFormat.yaml:
        return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    return json.dumps(document, indent=2) + "\n"


async def _rebuild(settings: Settings) -> int:
    store = await open_event_store(settings.store_url)
    views, registry_views = make_views(settings), make_registry_views(settings)
    plan_views = make_plan_views(settings)
    sealer, keys = open_sealer(settings)  # personal fields are sealed in the store
    try:
        last = await store.last_position()
        console.print(f"replaying the event store up to position {last} into {settings.state}")
        count = await SessionProjector(views, opener=EventMapper(sealer).open).rebuild(store)
        await RegistryProjector(registry_views).rebuild(store)
        # The session views' clear empties every tenant key, plan views included: fold them again.
        await PlanProjector(plan_views, opener=EventMapper(sealer).open).rebuild(store)
        return count
    finally:
        await keys.close()
        await views.close()
        await registry_views.close()
        await plan_views.close()
        await store.close()


def projections_rebuild(store: StoreOpt = None, state: StateOpt = None) -> None:
    """Drop the session, plan and tool-registry views and rebuild them by replaying the event store."""
    settings = load_settings(store=store, state=state)
    if settings.state.startswith("memory"):
        raise fail("in-memory projections are rebuilt at every start; give --state redis://…")
    try:
        count = asyncio.run(_rebuild(settings))
    except Exception as error:  # boundary
        raise fail(f"rebuild failed: {error}") from None
    console.print(f"rebuilt session, plan and registry views from {count} events")


def register(app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add the operations commands (and their benchmark) to the CLI."""
    projections_app = typer.Typer(help="Read models.", no_args_is_help=True)
    app.add_typer(projections_app, name="projections")
    projections_app.command("rebuild")(projections_rebuild)

    @bench_app.command("observability")
    def bench_observability(
        calls: Annotated[int, typer.Option(min=20, max=100_000, help="calls per measurement")] = 500,
        concurrency: Annotated[int, typer.Option(min=1, max=256, help="concurrent clients")] = 8,
        output: Annotated[Path, typer.Option(help="where to write the JSON report")] = Path(
            "bench-observability.json"
        ),
    ) -> None:
        """Tool-call p50/p99 and calls/s with tracing off and on (console exporter), and the
        time to render /metrics at 10, 100 and 1000 tools."""
        report = asyncio.run(
            run_observability_bench(calls, concurrency, lambda t: typer.echo(f"… {t}", err=True))
        )
        output.write_text(json.dumps(report, indent=2) + "\n")
        typer.echo(json.dumps({k: report[k] for k in ("tracing_overhead", "scrape")}, indent=2))
        for row in report["results"]:
            typer.echo(
                f"{row['target']:>15}: p50 {row['p50_ms']:.2f} ms  p99 {row['p99_ms']:.2f} ms  "
                f"{row['calls_per_s']:.0f} calls/s  stored {row['stored_outcomes']}"
            )
        typer.echo(f"written to {output}", err=True)

    @app.command("asyncapi")
    def asyncapi(
        out: Annotated[Path | None, typer.Option("--out", help="write here instead of stdout")] = None,
        document_format: Annotated[
            DocumentFormat, typer.Option("--format", help="json or yaml")
        ] = DocumentFormat.json,
    ) -> None:
        """The AsyncAPI 3.0 document of ledger.commands, ledger.events, ledger.compliance and
        ledger.plan-runs (topic names with LEDGER_TOPIC_PREFIX), for downstream subscribers."""
        text = render(asyncapi_document(Settings()), document_format)
        if out is None:
            typer.echo(text, nl=False)
            return
        out.write_text(text)
        typer.echo(f"written to {out}", err=True)
