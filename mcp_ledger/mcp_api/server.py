"""The MCP server: tools/list from the catalog, tools/call through the command gateway,
session state as resources from the projection.

Bad input is refused here, before a command exists: unknown tool and oversized arguments
are protocol errors; arguments that do not fit the input schema are a tool error the model
can correct. Either way nothing is published and nothing is written.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import mcp_types as types
from mcp.server import Server, ServerRequestContext
from mcp.shared.exceptions import MCPError

from mcp_ledger.checks.arguments import argument_size, check_arguments
from mcp_ledger.crypto.pointers import POINTER_PREFIX, PointerError
from mcp_ledger.crypto.ports import KeyStoreError
from mcp_ledger.domain.access import access_problem
from mcp_ledger.domain.commands import CallTool, new_session_id
from mcp_ledger.domain.plans.tools import PLAN_SCHEMA_URI
from mcp_ledger.domain.tools import ToolSpec
from mcp_ledger.mcp_api.audit import AuditResource
from mcp_ledger.mcp_api.auth.access_tokens import UnauthenticatedError
from mcp_ledger.mcp_api.auth.identity import (
    BadSessionHeaderError,
    Identity,
    IdentityResolver,
    session_from_headers,
)
from mcp_ledger.mcp_api.backchannel.capabilities import agent_capabilities, refuse_missing_capability
from mcp_ledger.mcp_api.backchannel.rounds import (
    RoundCatcher,
    RoundState,
    outcome_or_round,
    parse_state,
    wire_responses,
)
from mcp_ledger.mcp_api.blob_reads import BlobReader
from mcp_ledger.mcp_api.completions import SESSION_TEMPLATE, Completions
from mcp_ledger.mcp_api.gateway import CommandGateway, CommandTimeoutError
from mcp_ledger.mcp_api.listen import ListenStreams
from mcp_ledger.mcp_api.progress import ProgressHub, relaying
from mcp_ledger.mcp_api.prompts import PROMPTS, render_prompt
from mcp_ledger.mcp_api.rate_limits import RateGuard
from mcp_ledger.mcp_api.subscriptions import ResourceSubscriptions
from mcp_ledger.mcp_api.tasks.legacy import HandshakeTasksServer
from mcp_ledger.mcp_api.tasks.methods import TaskMethods
from mcp_ledger.mcp_api.tasks.wire import TASKS_EXTENSION, CreateTaskResult
from mcp_ledger.mcp_api.tools.pipelines import PipelineTool
from mcp_ledger.mcp_api.tools.plans import PLAN_SIZE_FACTOR, PlanTools, plan_json_schema
from mcp_ledger.mcp_api.tools.results import result_from_event
from mcp_ledger.mcp_api.tools.results import tool_error as _tool_error
from mcp_ledger.mcp_api.transport.called_tool import resolved
from mcp_ledger.mcp_api.transport.outages import ServiceOutages, outage_error
from mcp_ledger.mcp_api.transport.session_layer import TRANSPORT_SESSION_HEADER
from mcp_ledger.mcp_api.transport.sessions import TransportSessions
from mcp_ledger.mcp_api.upstreams import UpstreamSurface, selection
from mcp_ledger.producers.ports import BusError
from mcp_ledger.projections.registry.catalog import ToolCatalog
from mcp_ledger.projections.sessions.ports import SessionViewStore

SESSION_URI_PREFIX = "ledger://sessions/"

log = logging.getLogger(__name__)


def tool_listing(spec: ToolSpec) -> types.Tool:
    """The MCP description of a tool; an upstream tool's annotations, icons and _meta as sent.
    Task support is the gateway's own (it runs the task, whatever the upstream knows of tasks)."""
    forbidden = spec.task_support == "forbidden"
    tasks_meta = None if forbidden else {TASKS_EXTENSION: {"taskSupport": spec.task_support}}
    if spec.listing is not None:
        listing = {key: value for key, value in spec.listing.items() if key != "execution"}
        if tasks_meta is not None:
            listing["execution"] = {"taskSupport": spec.task_support}
            listing["_meta"] = {**(listing.get("_meta") or {}), **tasks_meta}
        return types.Tool.model_validate(
            {
                **listing,
                "name": spec.name,
                "title": spec.title,
                "description": spec.description,
                "inputSchema": spec.input_schema,
                "outputSchema": spec.output_schema,
            }
        )
    return types.Tool(
        name=spec.name,
        title=spec.title,
        description=spec.description,
        input_schema=spec.input_schema,
        output_schema=spec.output_schema,
        annotations=types.ToolAnnotations(read_only_hint=spec.read_only),
        execution=None if forbidden else types.ToolExecution(task_support=spec.task_support),
        # The 2026-07-28 wire has no `execution`: the support rides under the extension's id.
        meta=tasks_meta,
    )


class LedgerMcp:
    """Builds the SDK `Server` whose handlers turn requests into commands and reads."""

    def __init__(
        self,
        catalog: Mapping[str, ToolSpec],
        gateway: CommandGateway,
        views: SessionViewStore,
        identities: IdentityResolver,
        *,
        blobs: BlobReader,
        max_argument_bytes: int,
        registry: ToolCatalog | None = None,
        audit: AuditResource | None = None,
        plans: PlanTools | None = None,
        log_levels: TransportSessions | None = None,
        pipelines: PipelineTool | None = None,
        rate_guard: RateGuard | None = None,
        listens: ListenStreams | None = None,
        progress: ProgressHub | None = None,
        upstreams: UpstreamSurface | None = None,
        tasks: TaskMethods | None = None,
    ) -> None:
        self._tasks = tasks
        self._listens = listens
        self._upstreams = upstreams
        self._progress = progress
        self._log_levels = log_levels
        self._pipelines = pipelines
        self._rate_guard = rate_guard
        self._audit = audit
        self._plans = plans
        self._catalog = catalog
        self._registry = registry
        self._gateway = gateway
        self._views = views
        self._identities = identities
        self._blobs = blobs
        self._max_argument_bytes = max_argument_bytes
        audit_template = frozenset({audit.template().uri_template} if audit is not None else ())
        self._completions = Completions(views, audit_template)

    def build(self) -> Server[Any]:
        """The low-level SDK server with this gateway's handlers."""
        # With tasks, initialize (2025-11-25 only) also advertises SEP-1686's capabilities.tasks.
        server: Server[Any] = (Server if self._tasks is None else HandshakeTasksServer)(
            "mcp-ledger",
            version="0.1.0",
            instructions=(
                "Event-sourced MCP gateway: every call is recorded. Open a session with session_open."
            ),
            get_tool_input_schema=self._input_schema,
            on_list_tools=self._list_tools,
            on_list_resources=self._list_resources,
            on_list_resource_templates=self._list_templates,
            on_read_resource=self._read_resource,
            on_list_prompts=self._list_prompts,
            on_get_prompt=self._get_prompt,
            on_completion=self._complete,
        )
        # A failed database or state store answers a retryable error naming it (transport/outages.py).
        server.middleware.append(ServiceOutages())
        if self._log_levels is not None:
            # Logging and resources/subscribe left the core protocol in 2026-07-28 (the SDK
            # answers them there with method-not-found); 2025-11-25 sessions still have them.
            server.add_request_handler("logging/setLevel", types.SetLevelRequestParams, self._set_level)
            subscriptions = ResourceSubscriptions(self._log_levels, self._upstreams, self._identity)
            server.add_request_handler(
                "resources/subscribe", types.SubscribeRequestParams, subscriptions.subscribe
            )
            server.add_request_handler(
                "resources/unsubscribe", types.UnsubscribeRequestParams, subscriptions.unsubscribe
            )
        # tools/call registered here, not as on_call_tool: it may answer a CreateTaskResult.
        server.add_request_handler("tools/call", types.CallToolRequestParams, self._call_tool)
        if self._tasks is not None:
            self._tasks.register(server, self._identity, self._call_tool)
        if self._listens is not None:
            server.add_request_handler(
                "subscriptions/listen", types.SubscriptionsListenRequestParams, self._listen
            )
        return server

    async def _listen(
        self, ctx: ServerRequestContext[Any], params: types.SubscriptionsListenRequestParams
    ) -> types.SubscriptionsListenResult:
        assert self._listens is not None
        return await self._listens.listen(ctx, self._identity(ctx), params)

    async def _set_level(
        self, ctx: ServerRequestContext[Any], params: types.SetLevelRequestParams
    ) -> types.EmptyResult:
        session_id = ctx.request.headers.get(TRANSPORT_SESSION_HEADER) if ctx.request is not None else None
        if session_id is None or self._log_levels is None:
            raise MCPError(types.INVALID_REQUEST, "logging/setLevel needs an MCP session (initialize first)")
        await self._log_levels.set_log_level(session_id, params.level)
        return types.EmptyResult()

    def _identity(self, ctx: ServerRequestContext[Any]) -> Identity:
        try:
            return self._identities.resolve(ctx.request)
        except UnauthenticatedError as error:
            raise MCPError(types.INVALID_REQUEST, "authentication required") from error

    def _own_specs(self) -> dict[str, ToolSpec]:
        """The gateway's own tools served here: listed and routed before any registered tool."""
        specs = dict(self._catalog)
        if self._plans is not None:
            specs.update(self._plans.specs)
        if self._pipelines is not None:
            specs[self._pipelines.spec.name] = self._pipelines.spec
        return specs

    async def _list_tools(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        identity = self._identity(ctx)
        own = self._own_specs()
        specs = list(own.values())
        if self._registry is not None:
            session_id = await self._own_session(ctx.request, identity.tenant, identity.subject)
            registered = await self._registry.visible(identity.tenant, session_id)
            selection = await self._selection(identity.tenant, session_id)
            specs += [spec for spec in registered if spec.name not in own and selection(spec.name)]
        visible = [
            tool_listing(spec)
            for spec in specs
            if access_problem(identity.roles, spec.minimum_role, spec.allowed_roles) is None
        ]
        return types.ListToolsResult(tools=visible)

    async def _selection(self, tenant: str, session_id: str | None) -> Callable[[str], bool]:
        """Whether a registered or upstream tool is listed in this session (select_tools)."""
        view = None if session_id is None else await self._views.get(tenant, session_id)
        return selection(view.tool_selection if view is not None else None)

    def _input_schema(self, name: str) -> Mapping[str, Any] | None:
        """For the SDK's Mcp-Param check: the schema of the tool this request resolved ahead of
        dispatch (transport/called_tool.py), else of a gateway tool; None: nothing to check."""
        found, spec = resolved(name)
        if not found:
            spec = self._own_specs().get(name)
        return None if spec is None else spec.input_schema

    async def find_for(self, request: Any, identity: Identity, name: str) -> ToolSpec | None:
        """The tool `name` as this caller reaches it in this request (the session layer's
        lookup ahead of dispatch).

        Raises:
            MCPError: the request's session header is malformed.
        """
        spec = self._own_specs().get(name)
        if spec is not None or self._registry is None:
            return spec
        session_id = await self._own_session(request, identity.tenant, identity.subject)
        entry = await self._registry.find(identity.tenant, session_id, name)
        return None if entry is None else entry.spec

    async def _own_session(self, request: Any, tenant: str, subject: str) -> str | None:
        """The request's session if it is the caller's: another's session tools stay hidden."""
        try:
            session_id = session_from_headers(request)
        except BadSessionHeaderError as error:
            raise MCPError(types.INVALID_PARAMS, str(error)) from error
        if session_id is None:
            return None
        view = await self._views.get(tenant, session_id)
        return session_id if view is not None and view.subject == subject else None

    async def _find(self, ctx: ServerRequestContext[Any], name: str) -> ToolSpec | None:
        found, spec = resolved(name)  # found for this very request and caller, ahead of dispatch
        return spec if found else await self.find_for(ctx.request, self._identity(ctx), name)

    async def _call_tool(
        self, ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult | types.InputRequiredResult | CreateTaskResult | types.CreateTaskResult:
        spec = await self._find(ctx, params.name)
        # Plan tools and run_pipeline run in the API (validation, planners by sampling, stage
        # by stage); see mcp_api/plans.py and pipelines.py. Every other tool is a command.
        plan_tool = self._plans is not None and params.name in self._plans.specs
        pipeline_tool = self._pipelines is not None and params.name == self._pipelines.spec.name
        if spec is None:
            raise MCPError(types.INVALID_PARAMS, f"Unknown tool: {params.name}")
        arguments = dict(params.arguments or {})
        unsolicited = wire_responses(params.input_responses) if params.request_state is None else {}
        size, limit = (
            argument_size(arguments) + (argument_size(unsolicited) if unsolicited else 0),
            self._max_argument_bytes * (PLAN_SIZE_FACTOR if plan_tool else 1),
        )
        if size > limit:
            raise MCPError(types.INVALID_PARAMS, f"arguments are {size} bytes; the limit is {limit}")
        problem = await check_arguments(spec.input_schema, arguments)
        if problem is not None:
            return _tool_error(problem)
        state = parse_state(params.request_state) if params.request_state is not None else None
        if state is not None and not plan_tool and not pipeline_tool:  # only a round's own state
            return await self._resume_call(ctx, params, spec, arguments, state)
        as_task = self._tasks is not None and self._tasks.as_task(ctx, params, spec)
        if self._rate_guard is not None and not pipeline_tool:
            # Charged once every check passed; run_pipeline is charged stage by stage instead.
            await self._rate_guard.admit(self._identity(ctx))
        if plan_tool and self._plans is not None:
            if as_task and self._tasks is not None:  # only execute_plan supports tasks
                return await self._tasks.start_plan(ctx, self._identity(ctx), params)
            return await self._plans.call(ctx, params)
        if pipeline_tool:
            return await self._run_pipeline(ctx, params)
        try:
            session_id = new_session_id() if spec.opens_session else session_from_headers(ctx.request)
        except BadSessionHeaderError as error:
            raise MCPError(types.INVALID_PARAMS, str(error)) from error
        identity, capabilities = self._identity(ctx), agent_capabilities(ctx)
        command = CallTool(
            tenant=identity.tenant,
            subject=identity.subject,
            roles=identity.roles,
            session_id=session_id,
            tool_name=spec.name,
            arguments=arguments,
            client_capabilities=capabilities,
            # Only a 2026-07-28 agent's own inputResponses go along (its upstream may use them).
            input_responses=(unsolicited or None) if capabilities is not None else None,
        )
        if as_task and self._tasks is not None:
            return await self._start_task(ctx, params, identity, command)
        catcher = RoundCatcher() if command.client_capabilities is not None else None
        outcome = self._gateway.call(command, wait_s=spec.timeout_s)
        return await self._answer(ctx, spec, command, outcome, catcher)

    async def _resume_call(
        self,
        ctx: ServerRequestContext[Any],
        params: types.CallToolRequestParams,
        spec: ToolSpec,
        arguments: dict[str, Any],
        state: RoundState,
    ) -> types.CallToolResult | types.InputRequiredResult:
        """A 2026-07-28 agent's retry of a call waiting for its input (backchannel/rounds.py)."""
        if state.tool != spec.name or self._progress is None:
            raise MCPError(types.INVALID_PARAMS, "requestState does not name a call waiting for input")
        identity, hub = self._identity(ctx), self._progress
        command = CallTool(
            command_id=state.command_id,
            tenant=identity.tenant,
            subject=identity.subject,
            roles=identity.roles,
            session_id=state.session_id,
            tool_name=spec.name,
            arguments=arguments,
            client_capabilities=agent_capabilities(ctx),
        )
        responses = wire_responses(params.input_responses)

        async def answer() -> None:
            await hub.answer(identity.tenant, identity.subject, state.request_id, responses)

        outcome = self._gateway.outcome(command, wait_s=spec.timeout_s, first=answer)
        return await self._answer(ctx, spec, command, outcome, RoundCatcher())

    async def _answer(
        self,
        ctx: ServerRequestContext[Any],
        spec: ToolSpec,
        command: CallTool,
        outcome: Awaitable[dict[str, object]],
        catcher: RoundCatcher | None,
    ) -> types.CallToolResult | types.InputRequiredResult:
        """The call's result from its terminal event, or its upstream's next input round."""
        try:
            with self._relaying(ctx, command, catcher):
                answered = await outcome_or_round(outcome, catcher, command)
        except CommandTimeoutError as error:
            return _tool_error(str(error))
        except BusError as error:
            raise outage_error("command bus") from error
        except KeyStoreError as error:  # e.g. this process's KEK cannot unwrap the caller's key
            log.error("tools/call %s: %s", spec.name, error)
            raise MCPError(types.INTERNAL_ERROR, str(error)) from error
        if isinstance(answered, types.InputRequiredResult):
            return answered
        refuse_missing_capability(answered)
        return result_from_event(answered)

    def _relaying(
        self, ctx: ServerRequestContext[Any], command: CallTool, rounds: RoundCatcher | None = None
    ) -> AbstractContextManager[None]:
        """Upstream progress and logs of this call, relayed onto the request's stream."""
        return nullcontext() if self._progress is None else relaying(self._progress, ctx, command, rounds)

    async def _start_task(
        self,
        ctx: ServerRequestContext[Any],
        params: types.CallToolRequestParams,
        identity: Identity,
        command: CallTool,
    ) -> CreateTaskResult | types.CreateTaskResult:
        assert self._tasks is not None
        try:
            return await self._tasks.start(ctx, params, identity, command)
        except BusError as error:
            raise outage_error("command bus") from error

    async def _run_pipeline(
        self, ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        assert self._pipelines is not None
        try:
            session_id = session_from_headers(ctx.request)
        except BadSessionHeaderError as error:
            raise MCPError(types.INVALID_PARAMS, str(error)) from error

        async def progress(done: int, total: int, message: str) -> None:
            await ctx.session.report_progress(done, total, message)

        return await self._pipelines.call(
            self._identity(ctx), session_id, dict(params.arguments or {}), progress
        )

    async def _list_resources(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        identity = self._identity(ctx)
        ids = await self._views.sessions_of(identity.tenant, identity.subject)
        resources = [
            types.Resource(
                name=f"session {sid}", uri=f"{SESSION_URI_PREFIX}{sid}", mime_type="application/json"
            )
            for sid in ids
        ]
        if self._plans is not None:
            resources.append(
                types.Resource(name="plan schema", uri=PLAN_SCHEMA_URI, mime_type="application/json")
            )
        if self._upstreams is not None:
            session_id = await self._own_session(ctx.request, identity.tenant, identity.subject)
            resources += await self._upstreams.resources(identity, session_id)
        return types.ListResourcesResult(resources=resources)

    async def _list_templates(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        template = types.ResourceTemplate(
            name="session state",
            uri_template=SESSION_TEMPLATE,
            description="State of one of your sessions: notes and call counts.",
            mime_type="application/json",
        )
        templates = [template] + ([self._audit.template()] if self._audit is not None else [])
        if self._upstreams is not None:
            identity = self._identity(ctx)
            session_id = await self._own_session(ctx.request, identity.tenant, identity.subject)
            templates += await self._upstreams.templates(identity, session_id)
        return types.ListResourceTemplatesResult(resource_templates=templates)

    async def _read_resource(
        self, ctx: ServerRequestContext[Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult | types.InputRequiredResult:
        uri = str(params.uri)
        identity = self._identity(ctx)
        if self._audit is not None and self._audit.handles(uri):
            return await self._audit.read(identity, uri)
        if uri.startswith(POINTER_PREFIX):
            try:
                return await self._blobs.read(uri, identity, session_from_headers(ctx.request))
            except (PointerError, BadSessionHeaderError) as error:
                raise MCPError(types.INVALID_PARAMS, f"pointer refused: {error}") from error
        if uri == PLAN_SCHEMA_URI and self._plans is not None:
            text = json.dumps(plan_json_schema(), ensure_ascii=False)
            return types.ReadResourceResult(
                contents=[types.TextResourceContents(uri=uri, mime_type="application/json", text=text)]
            )
        if not uri.startswith(SESSION_URI_PREFIX):
            session_id = await self._own_session(ctx.request, identity.tenant, identity.subject)
            upstreams = self._upstreams
            found = None if upstreams is None else await upstreams.read(identity, session_id, params, ctx)
            if found is None:
                raise MCPError(types.INVALID_PARAMS, f"unknown resource {uri}", data={"uri": uri})
            return found
        view = await self._views.get(identity.tenant, uri.removeprefix(SESSION_URI_PREFIX))
        if view is None or view.subject != identity.subject:
            # Another subject's session reads as one that does not exist (SEP-2164's answer).
            raise MCPError(types.INVALID_PARAMS, f"unknown resource {uri}", data={"uri": uri})
        text = json.dumps(view.model_dump(mode="json"), ensure_ascii=False)
        return types.ReadResourceResult(
            contents=[types.TextResourceContents(uri=uri, mime_type="application/json", text=text)]
        )

    async def _list_prompts(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListPromptsResult:
        prompts = list(PROMPTS)
        if self._upstreams is not None:
            identity = self._identity(ctx)
            session_id = await self._own_session(ctx.request, identity.tenant, identity.subject)
            prompts += await self._upstreams.prompts(identity, session_id)
        return types.ListPromptsResult(prompts=prompts)

    async def _complete(
        self, ctx: ServerRequestContext[Any], params: types.CompleteRequestParams
    ) -> types.CompleteResult:
        """Completions of upstream prompts and resource templates (forwarded, recorded), else
        of the gateway's own prompts and templates."""
        identity = self._identity(ctx)
        if self._upstreams is not None:
            session_id = await self._own_session(ctx.request, identity.tenant, identity.subject)
            found = await self._upstreams.complete(identity, session_id, params)
            if found is not None:
                return found
        return await self._completions.complete(identity, params)

    async def _get_prompt(
        self, ctx: ServerRequestContext[Any], params: types.GetPromptRequestParams
    ) -> types.GetPromptResult | types.InputRequiredResult:
        arguments = dict(params.arguments or {})
        if self._upstreams is not None and params.name not in {prompt.name for prompt in PROMPTS}:
            identity = self._identity(ctx)
            session_id = await self._own_session(ctx.request, identity.tenant, identity.subject)
            found = await self._upstreams.get_prompt(identity, session_id, params, ctx)
            if found is not None:
                return found
        return render_prompt(params.name, arguments)
