"""The gateway's edge under attack, on the embedded gateway with auth on: reserved tool names,
rate limits on every execution, /metrics, the auditor's figures, transport checks before
anything, and 401 on every protected route.

Each test acts as the attacker (a tenant's admin registering gateway names, a caller over
its limit, an anonymous scraper, another tenant's auditor, a hostile web page, an anonymous
caller) and proves from the event store and the views that nothing ran and nothing leaked.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError
from mcp_types.methods import SPEC_CLIENT_METHODS
from prometheus_client.parser import text_string_to_metric_families
from starlette.routing import Route

from mcp_ledger.checks.manifests import load_manifests
from mcp_ledger.consumers.mapping import EventMapper
from mcp_ledger.domain.catalog import RESERVED_TOOL_NAMES
from mcp_ledger.domain.registry.model import RegisteredTool, ToolDefinition
from mcp_ledger.domain.registry.registration import RegistrationError
from mcp_ledger.domain.tools import builtin_catalog
from mcp_ledger.eventstore.ports import StoredEvent
from mcp_ledger.grpc_api.generated import mcp_tool_service_pb2 as pb
from mcp_ledger.grpc_api.structs import to_struct
from mcp_ledger.grpc_api.wire import MCPToolServiceClient
from mcp_ledger.mcp_api.rate_limits import RATE_LIMITED
from mcp_ledger.mcp_api.transport.checks import TransportPolicy
from mcp_ledger.projections.registry.catalog import ToolCatalog
from mcp_ledger.projections.registry.memory import MemoryRegistryViewStore
from mcp_ledger.projections.registry.view import RegistryView
from mcp_ledger.settings import Settings
from mcp_ledger.wiring.bootstrap import ConfigurationError, running
from mcp_ledger.wiring.grpc import serving_grpc
from tests.support.clients import INITIALIZE, JSON_RPC_HEADERS, mcp_client, structured, text_of
from tests.support.embedded import RunningGateway, embedded_settings, gateway
from tests.support.tokens import forged, good_token

WAIT = 20.0
PETS = "https://pets.example.com"


def _settings(tmp_path: Path, **changes: Any) -> Settings:
    base = {"registry_allowed_hosts": "pets.example.com,127.0.0.1:9", "metrics_port": 0}
    return embedded_settings(tmp_path, no_auth=False).model_copy(update={**base, **changes})


@pytest.fixture
async def secured(tmp_path: Path) -> AsyncIterator[RunningGateway]:
    async with gateway(_settings(tmp_path)) as running_gateway:
        yield running_gateway


def _auth(gw: RunningGateway, **claims: Any) -> dict[str, str]:
    return {"authorization": f"Bearer {good_token(gw.runtime.settings, **claims)}"}


def _base(gw: RunningGateway) -> str:
    return gw.url.removesuffix("/mcp")


async def _events(gw: RunningGateway) -> list[StoredEvent]:
    """Every stored event, opened (task ids and reasons are sealed in the store)."""
    assert gw.runtime.store is not None
    assert gw.runtime.sealer is not None
    mapper = EventMapper(gw.runtime.sealer)
    return [await mapper.open(event) for event in await gw.runtime.store.read_all()]


async def _position(gw: RunningGateway) -> int:
    assert gw.runtime.store is not None
    return await gw.runtime.store.last_position()


def _tool(name: str, base_url: str = PETS, method: str = "GET") -> dict[str, Any]:
    return {
        "name": name,
        "description": "A tool an admin wants to register.",
        "input_schema": {"type": "object", "properties": {}},
        "binding": {"kind": "http", "method": method, "base_url": base_url, "path": "/", "retries": 0},
    }


# 8. Reserved tool names -------------------------------------------------------------------


async def test_the_reserved_names_are_exactly_the_tools_the_gateway_serves(secured: RunningGateway) -> None:
    async with mcp_client(
        secured.url, mode="2026-07-28", token=good_token(secured.runtime.settings)
    ) as admin:
        served = [tool.name for tool in (await admin.list_tools()).tools]
    # A gateway tool added without being reserved is served but not reserved; a reserved
    # name nothing serves is a list kept by hand.
    assert sorted(served) == sorted(RESERVED_TOOL_NAMES)
    assert {"create_plan", "execute_plan", "plan_status", "cancel_plan", "replan_plan"} <= set(served)
    assert {"run_pipeline", "register_tools", "privacy_opt_out", "session_open", "note_set"} <= set(served)


async def _refused_over_grpc(gw: RunningGateway, tools: list[dict[str, Any]]) -> grpc.aio.AioRpcError:
    async with (
        serving_grpc(gw.runtime, "127.0.0.1", 0) as port,
        grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel,
    ):
        client = MCPToolServiceClient(channel, token=good_token(gw.runtime.settings))
        request = pb.RegisterToolRequest(tools=[s for s in map(to_struct, tools) if s is not None])
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await client.register_tool(request)
    return refused.value


def _manifest(name: str) -> str:
    return (
        "apiVersion: mcp-ledger.io/v1alpha1\nkind: MCPTool\nmetadata: {name: t}\n"
        f"spec:\n  name: {name}\n  description: d\n  inputSchema: {{type: object}}\n"
        f"  binding: {{http: {{method: GET, baseUrl: '{PETS}', path: /}}}}\n"
    )


async def test_a_gateway_tool_name_is_refused_through_every_way_in_and_nothing_is_registered(
    secured: RunningGateway,
) -> None:
    names = sorted(RESERVED_TOOL_NAMES)
    tools = [_tool(name) for name in names]
    openapi = {
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "1"},
        "servers": [{"url": PETS}],
        "paths": {
            f"/{name}": {"get": {"operationId": name, "responses": {"200": {"description": "ok"}}}}
            for name in names
        },
    }
    async with mcp_client(secured.url, token=good_token(secured.runtime.settings)) as admin:
        tenant = await admin.call_tool("register_tools", {"tools": tools})
        session = await admin.call_tool("register_tools", {"tools": tools, "scope": "session"})
        imported = await admin.call_tool("import_openapi", {"document": openapi})
        listed = [tool.name for tool in (await admin.list_tools()).tools]
    async with httpx.AsyncClient() as http:
        over_http = await http.post(
            f"{_base(secured)}/v1/tools", json={"tools": tools}, headers=_auth(secured)
        )
    over_grpc = await _refused_over_grpc(secured, tools)
    with pytest.raises(RegistrationError) as manifests:
        load_manifests("---\n".join(_manifest(name) for name in names))
    refusals = {
        "mcp tenant": text_of(tenant),
        "mcp session": text_of(session),
        "openapi": text_of(imported),
        "http": json.dumps(over_http.json()),
        "grpc": str(over_grpc.details()),
        "manifests": str(manifests.value),
    }
    assert tenant.is_error
    assert session.is_error
    assert imported.is_error
    assert over_http.status_code == 400
    assert over_grpc.code() == grpc.StatusCode.INVALID_ARGUMENT
    for way, text in refusals.items():
        assert "reserved for a built-in tool" in text, way
        assert all(f"{name}: the name is reserved" in text for name in names), (way, text)
    registries = [await secured.runtime.registry_views.get("acme", None)]
    assert all(view is None or not view.tools for view in registries)
    assert not [e for e in await _events(secured) if e.event_type in {"ToolRegistered", "ToolUpdated"}]
    assert sorted(listed) == names  # each name once


async def test_a_registration_stored_under_a_reserved_name_is_never_listed_nor_called(
    secured: RunningGateway,
) -> None:
    # As if registered before the name was reserved: the registry view holds it.
    squatter = ToolDefinition.model_validate(_tool("create_plan", base_url="http://127.0.0.1:9"))
    view = RegistryView(
        tenant="acme", version=1, tools={"create_plan": RegisteredTool(definition=squatter, version=1)}
    )
    assert await secured.runtime.registry_views.compare_and_set(view, 0)
    token = good_token(secured.runtime.settings, sub="bob", roles=("viewer",))
    async with mcp_client(secured.url, mode="2026-07-28", token=token) as user:
        listed = [tool.name for tool in (await user.list_tools()).tools]
        plan = {"tasks": [{"id": "a", "tool_name": "echo", "parameters": {"text": "mine"}}]}
        created = structured(await user.call_tool("create_plan", {"plan": plan}))
    events = await _events(secured)
    assert listed.count("create_plan") == 1
    assert created["status"] == "accepted"
    accepted = [e for e in events if e.event_type == "PlanAccepted"]
    assert [e.metadata["subject"] for e in accepted] == ["bob"]
    assert not [e for e in events if e.data.get("tool_name") == "create_plan"]  # no call to the squatter


async def test_the_catalog_the_api_and_the_worker_share_never_serves_a_squatted_name() -> None:
    views = MemoryRegistryViewStore()
    tools = {
        name: RegisteredTool(definition=ToolDefinition.model_validate(_tool(name)), version=1)
        for name in ("run_pipeline", "replan_plan", "pets")
    }
    assert await views.compare_and_set(RegistryView(tenant="acme", version=1, tools=tools), 0)
    catalog = ToolCatalog(builtin_catalog(), views)
    assert await catalog.find("acme", None, "run_pipeline") is None
    assert await catalog.find("acme", None, "replan_plan") is None
    found = await catalog.find("acme", None, "pets")
    assert found is not None
    assert found.spec.name == "pets"
    assert {"run_pipeline", "replan_plan"}.isdisjoint(s.name for s in await catalog.visible("acme", None))


# 9. Rate limits on every execution ---------------------------------------------------------


async def _wait_for(gw: RunningGateway, event_type: str) -> list[StoredEvent]:
    async with asyncio.timeout(WAIT):
        while not (found := [e for e in await _events(gw) if e.event_type == event_type]):
            await asyncio.sleep(0.05)
    return found


def _ran(events: list[StoredEvent], tool: str = "echo") -> int:
    return sum(1 for e in events if e.event_type == "ToolSucceeded" and e.data.get("tool_name") == tool)


async def test_two_pipelines_run_exactly_two_stages_against_a_limit_of_two_an_hour(tmp_path: Path) -> None:
    async with gateway(_settings(tmp_path, rate_subject="2/3600")) as limited:
        stages = [{"tool": "echo", "arguments": {"text": "piped"}}]
        stages += [{"tool": "echo", "input": "text", "from": "/text"} for _ in range(19)]
        refused = []
        async with mcp_client(
            limited.url, mode="2026-07-28", token=good_token(limited.runtime.settings)
        ) as client:
            for _ in range(2):
                with pytest.raises(MCPError) as caught:
                    await client.call_tool("run_pipeline", {"stages": stages})
                refused.append(caught.value)
        events = await _events(limited)
    assert [error.code for error in refused] == [RATE_LIMITED, RATE_LIMITED]
    assert [error.data["stage"] for error in refused] == [3, 1]
    assert [len(error.data["stages"]) for error in refused] == [2, 0]
    assert refused[0].data["scope"] == "subject"
    assert 1700 < refused[0].data["retry_after_seconds"] <= 1800  # 2/3600: one per half hour
    assert _ran(events) == 2
    assert sum(1 for e in events if e.event_type == "ToolCalled") == 2


def _chain(count: int) -> dict[str, Any]:
    tasks = [
        {"id": f"t{n}", "tool_name": "echo", "parameters": {"text": f"task {n}"}}
        | ({"dependencies": [f"t{n - 1}"]} if n else {})
        for n in range(count)
    ]
    return {"tasks": tasks}


@pytest.mark.parametrize(("limit", "tasks_run"), [("1/3600", 0), ("5/3600", 4)])
async def test_a_forty_task_plan_runs_only_the_tasks_its_callers_allowance_covers(
    tmp_path: Path, limit: str, tasks_run: int
) -> None:
    async with gateway(_settings(tmp_path, rate_subject=limit)) as limited:
        async with mcp_client(
            limited.url, mode="2026-07-28", token=good_token(limited.runtime.settings)
        ) as client:
            created = structured(await client.call_tool("create_plan", {"plan": _chain(40), "execute": True}))
        (completed,) = await _wait_for(limited, "PlanCompleted")
        events = await _events(limited)
    failed = [e for e in events if e.event_type == "TaskFailed"]
    assert created["status"] == "running"  # create_plan took the first unit of the allowance
    assert completed.data["status"] == "failed"
    assert sum(1 for e in events if e.event_type == "TaskSucceeded") == tasks_run
    assert [(e.data["task_id"], e.data["error_code"], e.data["retryable"]) for e in failed] == [
        (f"t{tasks_run}", "rate_limited", True)
    ]
    assert sum(1 for e in events if e.event_type == "TaskStarted") == tasks_run + 1  # nothing after


async def test_initialize_over_the_limit_opens_no_session_and_says_when_to_retry(tmp_path: Path) -> None:
    async with gateway(_settings(tmp_path, rate_subject="1/3600")) as limited:
        headers = {**JSON_RPC_HEADERS, **_auth(limited)}
        async with httpx.AsyncClient() as http:
            first = await http.post(limited.url, json=INITIALIZE, headers=headers)
            before = await _position(limited)
            second = await http.post(limited.url, json=INITIALIZE, headers=headers)
        after = await _position(limited)
    assert first.status_code == 200
    assert "mcp-session-id" in first.headers
    assert second.status_code == 429
    assert "mcp-session-id" not in second.headers
    assert second.json()["error"]["code"] == RATE_LIMITED
    assert 3000 < int(second.headers["retry-after"]) <= 3600
    assert after == before


async def test_http_registration_grpc_calls_and_opt_outs_are_charged_like_tool_calls(tmp_path: Path) -> None:
    async with gateway(_settings(tmp_path, rate_subject="1/3600")) as limited:
        async with mcp_client(
            limited.url, mode="2026-07-28", token=good_token(limited.runtime.settings)
        ) as client:
            structured(await client.call_tool("echo", {"text": "the only one"}))
        before = await _position(limited)
        async with httpx.AsyncClient() as http:
            base, auth = _base(limited), _auth(limited)
            registered = await http.post(f"{base}/v1/tools", json={"tools": [_tool("pets")]}, headers=auth)
            opted = await http.post(f"{base}/admin/opt-outs", json={"subject": "bob"}, headers=auth)
        async with (
            serving_grpc(limited.runtime, "127.0.0.1", 0) as port,
            grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel,
        ):
            client_ = MCPToolServiceClient(channel, token=good_token(limited.runtime.settings))
            call = pb.ExecuteToolRequest(call_id="c", tool_name="echo", arguments=to_struct({"text": "x"}))

            async def one() -> AsyncIterator[pb.ExecuteToolRequest]:
                yield call

            updates = [update async for update in client_.execute_tool(one())]
        after = await _position(limited)
    assert (registered.status_code, opted.status_code) == (429, 429)
    assert int(registered.headers["retry-after"]) > 3000
    assert [u.result.error_code for u in updates if u.WhichOneof("update") == "result"] == ["rate_limited"]
    assert after == before


# 11. /metrics ------------------------------------------------------------------------------


async def test_metrics_are_not_on_the_api_port_for_anyone(secured: RunningGateway) -> None:
    async with httpx.AsyncClient() as http:
        anonymous = await http.get(f"{_base(secured)}/metrics")
        admin = await http.get(f"{_base(secured)}/metrics", headers=_auth(secured))
    assert anonymous.status_code == 401
    assert admin.status_code == 404
    assert "ledger_" not in anonymous.text + admin.text


async def test_the_metrics_port_wants_its_token_and_never_opens_off_loopback_without_one(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigurationError, match="LEDGER_METRICS_TOKEN"):
        async with running(_settings(tmp_path, metrics_host="0.0.0.0"), api=True, worker=True):
            pass
    async with gateway(_settings(tmp_path, metrics_token="scrape-secret")) as protected:
        url = f"http://127.0.0.1:{protected.runtime.metrics_port}"
        async with httpx.AsyncClient() as http:
            anonymous = await http.get(f"{url}/metrics")
            tenant_token = await http.get(f"{url}/metrics", headers=_auth(protected))
            scraper = await http.get(f"{url}/metrics", headers={"authorization": "Bearer scrape-secret"})
            live = await http.get(f"{url}/healthz")
    assert (anonymous.status_code, tenant_token.status_code) == (401, 401)
    assert "ledger_" not in anonymous.text + tenant_token.text
    assert scraper.status_code == 200
    assert "ledger_events_appended_total" in scraper.text
    assert live.status_code == 200


def _series(text: str) -> set[tuple[str, frozenset[tuple[str, str]]]]:
    return {
        (sample.name, frozenset(sample.labels.items()))
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_a_hundred_unknown_methods_and_registered_tools_add_no_series(secured: RunningGateway) -> None:
    names = [f"acme_secret_tool_{n}" for n in range(100)]
    headers = {**JSON_RPC_HEADERS, **_auth(secured)}
    metrics_url = f"http://127.0.0.1:{secured.runtime.metrics_port}/metrics"

    async def attack(http: httpx.AsyncClient, client: Any, eras: list[dict[str, str]], numbers: range) -> str:
        for n in numbers:
            body = {"jsonrpc": "2.0", "id": n, "method": f"acme/secret-method-{n}", "params": {}}
            for era in eras:  # a 2025-11-25 session and the stateless protocol
                await http.post(secured.url, json=body, headers={**headers, **era})
            assert (await client.call_tool(names[n], {})).is_error  # nothing listens on port 9
        return (await http.get(metrics_url)).text

    token = good_token(secured.runtime.settings)
    async with httpx.AsyncClient() as http, mcp_client(secured.url, mode="2026-07-28", token=token) as client:
        session = (await http.post(secured.url, json=INITIALIZE, headers=headers)).headers["mcp-session-id"]
        eras = [{"mcp-session-id": session}, {"mcp-protocol-version": "2026-07-28"}]
        tools = [_tool(name, base_url="http://127.0.0.1:9", method="POST") for name in names]
        structured(await client.call_tool("register_tools", {"tools": tools}))
        after_one = await attack(http, client, eras, range(1))
        after_all = await attack(http, client, eras, range(1, 100))
    assert _series(after_all) == _series(after_one)
    assert "acme_secret" not in after_all
    assert "secret-method" not in after_all
    methods = {dict(labels)["method"] for name, labels in _series(after_all) if "method" in dict(labels)}
    assert "other" in methods
    assert methods <= SPEC_CLIENT_METHODS | {"other"}
    labelled = {dict(labels)["tool"] for _, labels in _series(after_all) if "tool" in dict(labels)}
    assert "registered" in labelled
    assert labelled <= RESERVED_TOOL_NAMES | {"registered", ""}


# 12. The auditor's figures -----------------------------------------------------------------


async def _verify(gw: RunningGateway, tenant: str) -> dict[str, Any]:
    token = good_token(gw.runtime.settings, sub=f"auditor-{tenant}", tenant=tenant, roles=("auditor",))
    async with mcp_client(gw.url, mode="2026-07-28", token=token) as auditor:
        result = await auditor.read_resource("ledger://audit/verify")
    content = result.contents[0]
    assert isinstance(content, types.TextResourceContents)
    found: dict[str, Any] = json.loads(content.text)
    return found


async def test_an_auditor_counts_and_sees_only_their_tenants_part_of_the_chain(
    secured: RunningGateway,
) -> None:
    async def calls(tenant: str, count: int) -> None:
        token = good_token(secured.runtime.settings, sub="someone", tenant=tenant)
        async with mcp_client(secured.url, mode="2026-07-28", token=token) as client:
            for n in range(count):
                structured(await client.call_tool("echo", {"text": f"{tenant} {n}"}))

    await calls("globex", 3)
    await calls("acme", 2)
    events = await _events(secured)
    acme = [e.position for e in events if e.metadata.get("tenant") == "acme"]
    globex = [e.position for e in events if e.metadata.get("tenant") == "globex"]
    intact = await _verify(secured, "acme")
    with sqlite3.connect(secured.runtime.settings.data_dir / "ledger.db") as db:  # the data directory
        db.execute("UPDATE events SET data = '{}' WHERE position = ?", (globex[-1],))
    acme_view, globex_view = await _verify(secured, "acme"), await _verify(secured, "globex")
    assert intact == {"tenant": "acme", "checked": len(acme), "first_broken": None, "reason": ""}
    assert acme_view["tenant"] == "acme"
    assert acme_view["checked"] == 0  # acme's events all come after the break
    assert acme_view["first_broken"] == acme[0] != globex[-1]
    assert acme_view["reason"].startswith("unverifiable")
    assert globex_view == {
        "tenant": "globex",
        "checked": len(globex) - 1,
        "first_broken": globex[-1],
        "reason": "hash mismatch",
    }


# 14/15. Transport checks before anything ---------------------------------------------------

REFUSALS = {
    "hostile origin": ({"origin": "https://evil.example"}, 403),
    "rebinding host": ({"host": "evil.example"}, 421),
    "no json accepted": ({"accept": "text/html"}, 406),
    "form content": ({"content-type": "application/x-www-form-urlencoded"}, 415),
    "content type case": ({"content-type": "Application/JSON"}, 415),
}


@pytest.mark.parametrize("reason", sorted(REFUSALS))
async def test_a_refused_initialize_records_nothing_and_hands_out_no_session(
    secured: RunningGateway, reason: str
) -> None:
    change, status = REFUSALS[reason]
    before = await _position(secured)
    async with httpx.AsyncClient() as http:
        refused = await http.post(
            secured.url,
            content=json.dumps(INITIALIZE),
            headers={**JSON_RPC_HEADERS, **_auth(secured), **change},
        )
    assert refused.status_code == status
    assert "mcp-session-id" not in refused.headers
    assert await _position(secured) == before


@pytest.mark.parametrize("method", ["GET", "DELETE"])
@pytest.mark.parametrize("change", [{"origin": "https://evil.example"}, {"host": "evil.example"}])
async def test_get_and_delete_from_a_hostile_page_are_refused_and_the_session_is_untouched(
    secured: RunningGateway, method: str, change: dict[str, str]
) -> None:
    headers = {**JSON_RPC_HEADERS, **_auth(secured)}
    ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
    async with httpx.AsyncClient() as http:
        session_id = (await http.post(secured.url, json=INITIALIZE, headers=headers)).headers[
            "mcp-session-id"
        ]
        before = await _position(secured)
        hostile = {**headers, "accept": "text/event-stream", "mcp-session-id": session_id, **change}
        refused = await http.request(method, secured.url, headers=hostile)
        still = await http.post(secured.url, json=ping, headers={**headers, "mcp-session-id": session_id})
    assert refused.status_code in {403, 421}
    assert "text/event-stream" not in refused.headers.get("content-type", "")
    assert still.status_code == 200  # the DELETE did not end it
    assert await _position(secured) == before


async def test_a_get_that_does_not_accept_an_event_stream_opens_none(secured: RunningGateway) -> None:
    headers = {**JSON_RPC_HEADERS, **_auth(secured)}
    async with httpx.AsyncClient() as http:
        session_id = (await http.post(secured.url, json=INITIALIZE, headers=headers)).headers[
            "mcp-session-id"
        ]
        refused = await http.get(
            secured.url, headers={**headers, "accept": "application/json", "mcp-session-id": session_id}
        )
    assert refused.status_code == 406
    assert "text/event-stream" not in refused.headers.get("content-type", "")


def test_off_loopback_only_the_public_and_configured_origins_may_call() -> None:
    policy = TransportPolicy.for_server(
        "0.0.0.0", "https://mcp.example.com", extra_origins=["https://app.example.com"]
    )
    scope = {"type": "http", "method": "GET", "path": "/mcp", "query_string": b""}

    def verdict(headers: dict[str, str]) -> tuple[int, str] | None:
        from starlette.requests import Request

        raw = [(k.encode(), v.encode()) for k, v in {"accept": "text/event-stream", **headers}.items()]
        return policy.problem(Request({**scope, "headers": raw}))

    assert verdict({"host": "anything.internal"}) is None  # Host is not pinned off loopback
    assert verdict({"origin": "https://mcp.example.com"}) is None
    assert verdict({"origin": "https://app.example.com"}) is None
    assert verdict({"origin": "https://evil.example"}) == (403, "Origin not allowed")
    assert verdict({"origin": "https://mcp.example.com.evil.example"}) == (403, "Origin not allowed")


# 16. 401 on every protected route -----------------------------------------------------------

PUBLIC = {"/healthz", "/readyz", "/.well-known/oauth-protected-resource/mcp"}


class _Tracebacks(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def tracebacks() -> Iterator[_Tracebacks]:
    handler = _Tracebacks()
    loggers = [logging.getLogger(), logging.getLogger("uvicorn.error"), logging.getLogger("uvicorn")]
    for logger in loggers:
        logger.addHandler(handler)
    yield handler
    for logger in loggers:
        logger.removeHandler(handler)


def _routes(gw: RunningGateway) -> list[tuple[str, str]]:
    assert gw.runtime.app is not None
    routes = [route for route in gw.runtime.app.routes if isinstance(route, Route)]
    return [
        (route.path, method)
        for route in routes
        for method in sorted(route.methods or {"GET"})
        if method != "HEAD"
    ]


async def test_every_route_but_the_public_ones_answers_401_with_a_challenge_never_500(
    secured: RunningGateway, tracebacks: _Tracebacks
) -> None:
    routes = _routes(secured)
    protected = [(path, method) for path, method in routes if path not in PUBLIC]
    bad = {"none": {}, "forged": {"authorization": f"Bearer {forged(secured.runtime.settings)}"}}
    async with httpx.AsyncClient() as http:
        answers = {
            (path, method, kind): await http.request(
                method,
                _base(secured) + path,
                content=b'{"subject": "bob", "tools": []}',
                headers={**JSON_RPC_HEADERS, "accept": "application/json, text/event-stream", **auth},
            )
            for path, method in protected
            for kind, auth in bad.items()
        }
    assert {path for path, _ in routes} - {path for path, _ in protected} == PUBLIC
    assert {"/admin/erasures", "/admin/opt-outs", "/v1/tools", "/v1/capabilities", "/mcp"} <= {
        p for p, _ in protected
    }
    for key, answer in answers.items():
        assert answer.status_code == 401, (key, answer.status_code, answer.text)
        assert 'resource_metadata="' in answer.headers["www-authenticate"], key
    assert [r for r in tracebacks.records if r.exc_info] == []
    assert await _events(secured) == []


async def test_a_valid_token_without_the_admin_role_gets_403_and_nothing_runs(
    secured: RunningGateway,
) -> None:
    viewer = _auth(secured, sub="mallory", roles=("viewer",))
    async with httpx.AsyncClient() as http:
        erasure = await http.post(
            f"{_base(secured)}/admin/erasures", json={"subject": "alice"}, headers=viewer
        )
        opt_out = await http.post(
            f"{_base(secured)}/admin/opt-outs", json={"subject": "alice"}, headers=viewer
        )
        register = await http.post(
            f"{_base(secured)}/v1/tools", json={"tools": [_tool("pets")]}, headers=viewer
        )
    events = await _events(secured)
    assert (erasure.status_code, opt_out.status_code, register.status_code) == (403, 403, 403)
    assert {e.event_type for e in events} == {"ToolCallDenied"}  # the registry's own denial record
    assert not [
        e for e in events if e.event_type in {"ToolRegistered", "ErasureCompleted", "SubjectOptedOut"}
    ]
