"""Wiring of the planner (part of bootstrap): plan views, the plan command handler, the
executor on the plan-runs topic, the plan projector, and resuming unfinished plans.

Only wiring/bootstrap.py calls this module. A plan run is a message on ledger.plan-runs keyed by
the plan's stream; the worker holding it executes the plan and commits it at the end, so a
worker that dies mid-plan leaves the message to the group and another worker resumes the
plan from the event store. The embedded bus keeps nothing across restarts, so there the
plans still running at start are asked to run again. A plan run is one unit of work of the
key scopes (its subject's key is pinned for the whole run), and the plan projector is one
the erasure barrier waits for.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import nullcontext
from dataclasses import dataclass

from mcp_ledger.consumers.command_handler import AppendedCallback, CommandHandler
from mcp_ledger.consumers.compliance.barrier import SubjectCaches
from mcp_ledger.consumers.mapping import EventMapper
from mcp_ledger.consumers.plans.commands import PlanCommandHandler
from mcp_ledger.consumers.plans.executor import PlanExecutor
from mcp_ledger.consumers.tools import BUILTIN_RUNNERS
from mcp_ledger.crypto.ports import KeyScopes
from mcp_ledger.domain.commands import CallTool
from mcp_ledger.domain.plans.decisions import TaskResult
from mcp_ledger.domain.tools import builtin_catalog
from mcp_ledger.eventstore.ports import EventStore
from mcp_ledger.limits.admission import RateAdmission
from mcp_ledger.mcp_api.auth.identity import IdentityResolver
from mcp_ledger.mcp_api.gateway import CommandGateway
from mcp_ledger.mcp_api.tools.planners import make_endpoint_planner
from mcp_ledger.mcp_api.tools.plans import FINISHED, PlanTools
from mcp_ledger.producers.ports import Handler, Message, MessageBus
from mcp_ledger.projections.plans.memory import MemoryPlanViewStore
from mcp_ledger.projections.plans.ports import PlanViewStore
from mcp_ledger.projections.plans.projector import PlanProjector
from mcp_ledger.projections.plans.redis import RedisPlanViewStore
from mcp_ledger.projections.registry.catalog import ToolCatalog
from mcp_ledger.settings import Settings
from mcp_ledger.wiring.compliance import projecting

log = logging.getLogger(__name__)


def make_plan_views(settings: Settings) -> PlanViewStore:
    """The plan view store beside the session views (same LEDGER_STATE)."""
    if settings.state.startswith("memory"):
        return MemoryPlanViewStore()
    return RedisPlanViewStore.from_url(
        settings.state,
        prefix=settings.state_prefix,
        ttl=settings.session_view_ttl,
        tenant_ttl={tenant: days * 86400.0 for tenant, days in settings.retention_days.items()},
    )


def _handler(handle: Callable[[bytes], Awaitable[None]]) -> Handler:
    async def on_message(message: Message) -> None:
        await handle(message.value)

    return on_message


@dataclass
class PlanWorker:
    """The worker side of plans, built before the bus starts."""

    commands: PlanCommandHandler
    executor: PlanExecutor
    request_run: Callable[[str], Awaitable[None]]


def plan_worker(
    settings: Settings,
    bus: MessageBus,
    store: EventStore,
    on_appended: AppendedCallback,
    mapper: EventMapper,
    *,
    scopes: KeyScopes | None = None,
) -> PlanWorker:
    """The plan command handler and the executor, subscribed to the plan-runs topic."""

    async def run(payload: bytes) -> None:
        # The whole run is one unit: outputs it opened are sealed again only under the key
        # it met first, even if the subject is erased while the plan runs.
        with nullcontext() if scopes is None else scopes.unit():
            await executor.handle_payload(payload)

    async def request_run(stream_id: str) -> None:
        payload = json.dumps({"stream_id": stream_id}).encode()
        await bus.publish(settings.plan_runs_topic, stream_id, payload)

    commands = PlanCommandHandler(
        store, builtin_catalog(), request_run, on_appended, time.time, mapper=mapper
    )
    executor = PlanExecutor(store, builtin_catalog(), BUILTIN_RUNNERS, on_appended, mapper=mapper)
    executor.redeliver_on_stop = not settings.embedded
    bus.subscribe(
        settings.plan_runs_topic,
        _handler(run),
        group=f"{settings.worker_group}-plans",
        concurrency=settings.plan_concurrency,
    )
    return PlanWorker(commands, executor, request_run)


def charge_tasks(worker: PlanWorker, admission: RateAdmission | None) -> None:
    """Every plan task attempt is charged to the plan's caller like a tool call (the API
    charged create_plan and execute_plan only); a refused attempt fails `rate_limited`."""
    if admission is None:
        return

    async def gate(command: CallTool) -> TaskResult | None:
        refusal = await admission.take(command.tenant, command.subject)
        return None if refusal is None else TaskResult(error_code="rate_limited", message=refusal.message)

    worker.executor.attempts.gate = gate


def attach_calls(worker: PlanWorker, calls: CommandHandler, registry: ToolCatalog | None = None) -> None:
    """Session-bound plan tasks go through the command handler (exactly-once call records),
    and so do tasks naming a registered or upstream tool of the plan's scope (`registry`)."""
    worker.executor.attempts.calls = calls
    worker.executor.attempts.registry = registry
    worker.commands.registry = registry


async def project_plans(
    settings: Settings,
    bus: MessageBus,
    store: EventStore,
    views: PlanViewStore,
    mapper: EventMapper,
    *,
    caches: SubjectCaches | None = None,
) -> None:
    """Plan views from ledger.events; in memory they are first rebuilt from the store."""
    projector = PlanProjector(views, opener=mapper.open, store=store)
    if isinstance(views, MemoryPlanViewStore):
        await projector.rebuild(store)
    handle = projector.handle_payload if caches is None else projecting(caches, projector.handle_payload)
    bus.subscribe(
        settings.events_topic,
        _handler(handle),
        group=f"{settings.projection_group}-plans",
        concurrency=settings.projection_concurrency,
    )


async def resume_embedded_plans(settings: Settings, worker: PlanWorker, views: PlanViewStore) -> int:
    """Ask for a run of every started, unfinished plan (embedded mode, after the bus started)."""
    if not settings.embedded or not isinstance(views, MemoryPlanViewStore):
        return 0
    unfinished = [v for v in await views.all_views() if v.started_at is not None and v.status not in FINISHED]
    for view in unfinished:
        plan = await worker.commands.owned_plan(view.tenant, view.subject, view.plan_id)
        await worker.request_run(plan.stream_id)
    if unfinished:
        log.info("resuming %d unfinished plans", len(unfinished))
    return len(unfinished)


def plan_tools(
    settings: Settings,
    gateway: CommandGateway,
    views: PlanViewStore,
    identities: IdentityResolver,
    registry: ToolCatalog | None = None,
) -> PlanTools:
    """The plan tools of the MCP API, with the planners the settings allow; plans may name
    the registered and upstream tools of the caller's scope too (`registry`)."""
    return PlanTools(
        builtin_catalog(),
        gateway,
        views,
        identities,
        planner=make_endpoint_planner(settings.planner_url, settings.planner_model, settings.planner_api_key),
        registry=registry,
    )
