"""Input bounds, attacked over HTTP against the embedded gateway with auth on and real tokens.

The attacker (tenant "evil", admin there) sends what the attack run sent: YAML alias bombs
and 3,000-deep YAML, a backtracking pattern in a registered schema, path arguments made of
dot segments and slashes, JSON nested 1,000 and 100,000 deep, schemas whose references
loop, conditions with hundreds of parentheses, plan shapes of the wrong type. Each must
come back as a 4xx or a JSON-RPC / tool error that says what is wrong (never a 5xx or
-32603), quickly, without stalling another tenant's calls, and without writing anything
when it is refused at the edge.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mcp_ledger.checks.arguments import argument_problem, check_arguments
from mcp_ledger.checks.documents import DocumentError, load_json, nesting_problem, nests_deeper
from mcp_ledger.checks.manifests import load_manifests
from mcp_ledger.checks.yaml_documents import load_yaml
from mcp_ledger.domain.plans.conditions import parse_condition
from mcp_ledger.domain.plans.model import PlanFormError, normalise_plan
from mcp_ledger.domain.plans.validation import plan_problems, with_derived_dependencies
from mcp_ledger.domain.registry.registration import RegistrationError
from mcp_ledger.domain.tools import builtin_catalog
from tests.support.embedded import RunningGateway, embedded_settings
from tests.support.pet_service import PetService, pet_service
from tests.support.schema_values import json_values
from tests.support.threaded import threaded_gateway
from tests.support.tokens import good_token

META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientInfo": {"name": "attacker", "version": "0"},
    "io.modelcontextprotocol/clientCapabilities": {},
}
HEADERS = {
    "accept": "application/json, text/event-stream",
    "content-type": "application/json",
    "mcp-protocol-version": "2026-07-28",
}
GENEROUS_SECONDS = 10.0
"""A bound on calls that take milliseconds when bounded and tens of seconds when not."""
REDOS = "^(a+)+$"
REDOS_ATTACK = "a" * 29 + "!"
"""Python's backtracking engine needs about 2**29 steps for this: half a minute or more."""


@dataclass(frozen=True)
class Stack:
    running: RunningGateway
    attacker: str
    victim: str

    @property
    def base(self) -> str:
        return self.running.url.removesuffix("/mcp")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    settings = embedded_settings(tmp_path_factory.mktemp("bounds"), no_auth=False).model_copy(
        update={"registry_allowed_hosts": "127.0.0.1"}
    )
    with threaded_gateway(settings) as running:
        attacker = good_token(settings, sub="mallory", tenant="evil", roles=("admin",))
        victim = good_token(settings, sub="alice", tenant="acme", roles=("data-analyst",))
        yield Stack(running, attacker, victim)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=120.0) as client:
        yield client


@pytest.fixture
async def pets() -> AsyncIterator[PetService]:
    async with pet_service() as service:
        yield service


def written(stack: Stack) -> tuple[int, int]:
    """Rows in the embedded store's events and commands tables."""
    db = Path(stack.running.runtime.settings.data_dir) / "ledger.db"
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        counts = [conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("events", "commands")]
    return int(counts[0]), int(counts[1])


def _auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def rpc(
    http: httpx.AsyncClient, stack: Stack, token: str, method: str, params: dict[str, Any], name: str = ""
) -> dict[str, Any]:
    """One stateless JSON-RPC request; never a 5xx, never -32603."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": {**params, "_meta": META}})
    headers = {**HEADERS, "mcp-method": method, **_auth(token), **({"mcp-name": name} if name else {})}
    response = await http.post(stack.running.url, content=body, headers=headers)
    assert response.status_code < 500, response.text
    message: dict[str, Any] = response.json()
    assert message.get("error", {}).get("code") != -32603, message
    return message


async def call(
    http: httpx.AsyncClient, stack: Stack, token: str, name: str, arguments: dict[str, Any]
) -> dict[str, Any]:
    return await rpc(http, stack, token, "tools/call", {"name": name, "arguments": arguments}, name)


def refusal(message: dict[str, Any]) -> str:
    """The text of a JSON-RPC error or of an error result (fails on a success)."""
    if "error" in message:
        return str(message["error"]["message"])
    result = message["result"]
    assert result["isError"] is True, result
    return "".join(block.get("text", "") for block in result["content"])


def http_tool(name: str, base_url: str, schema: dict[str, Any], **binding: Any) -> dict[str, Any]:
    http_binding = {"kind": "http", "method": "GET", "base_url": base_url, "path": "/api/echo", **binding}
    return {"name": name, "description": "attacker's tool", "input_schema": schema, "binding": http_binding}


async def register(http: httpx.AsyncClient, stack: Stack, tool: dict[str, Any]) -> httpx.Response:
    response = await http.post(
        f"{stack.base}/v1/tools", json={"tools": [tool]}, headers=_auth(stack.attacker)
    )
    assert response.status_code < 500, response.text
    return response


async def visible(http: httpx.AsyncClient, stack: Stack, token: str) -> set[str]:
    message = await rpc(http, stack, token, "tools/list", {})
    return {tool["name"] for tool in message["result"]["tools"]}


async def registered(http: httpx.AsyncClient, stack: Stack, tool: dict[str, Any]) -> str:
    """Register a tool as the attacker and wait until the catalog shows it."""
    response = await register(http, stack, tool)
    assert response.status_code == 201, response.text
    async with asyncio.timeout(10):
        while tool["name"] not in await visible(http, stack, stack.attacker):
            await asyncio.sleep(0.05)
    return str(tool["name"])


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


# YAML: aliases, depth, size, types --------------------------------------------------------


def alias_bomb_plan(levels: int, fanout: int) -> str:
    """A plan whose parameters hold nested aliases: about 40 bytes per level, fanout**levels
    values once expanded (6 levels of 9: half a million)."""
    lines = ["plan_id: bomb", "tasks:", "- id: t", "  tool_name: echo", "  parameters:", "    text: hi"]
    lines.append(f"    a0: &a0 [{', '.join(['lol'] * fanout)}]")
    lines += [f"    a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * fanout)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(("levels", "fanout"), [(6, 9), (7, 10)])
async def test_a_yaml_plan_with_nested_aliases_is_refused_before_it_expands(
    stack: Stack, http: httpx.AsyncClient, levels: int, fanout: int
) -> None:
    text = alias_bomb_plan(levels, fanout)
    assert len(text) < 600
    before = written(stack)
    message = await call(http, stack, stack.attacker, "create_plan", {"plan": text})
    assert "anchors (&a0) are not accepted" in refusal(message)
    assert written(stack) == before


def test_manifests_refuse_anchors_and_aliases_as_plans_do() -> None:
    manifest = "apiVersion: mcp-ledger.io/v1alpha1\nkind: MCPTool\nmetadata: &m {name: x}\nspec: *m\n"
    with pytest.raises(RegistrationError, match=r"anchors \(&m\) are not accepted"):
        load_manifests(manifest)
    with pytest.raises(DocumentError, match=r"aliases \(\*x\) are not accepted"):
        load_yaml("a: *x\n", max_bytes=1024)


async def test_an_openapi_document_in_yaml_with_aliases_registers_nothing(
    stack: Stack, http: httpx.AsyncClient, pets: PetService
) -> None:
    document = (
        f"openapi: 3.1.0\nservers: [{{url: '{pets.base_url}'}}]\n"
        "paths:\n  /a: &op {get: {operationId: a}}\n  /b: *op\n"
    )
    message = await call(http, stack, stack.attacker, "import_openapi", {"document": document})
    assert "anchors (&op) are not accepted" in refusal(message)
    assert not {"a", "b"} & await visible(http, stack, stack.attacker)


async def test_openapi_references_that_fan_out_are_refused_like_aliases(
    stack: Stack, http: httpx.AsyncClient, pets: PetService
) -> None:
    schemas: dict[str, Any] = {"s0": {"type": "string"}}
    for level in range(1, 7):  # ten references to the level below, six times: a million values
        below = {"$ref": f"#/components/schemas/s{level - 1}"}
        schemas[f"s{level}"] = {"type": "object", "properties": {f"p{i}": below for i in range(10)}}
    response = {"200": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/s6"}}}}}
    document = {
        "openapi": "3.1.0",
        "servers": [{"url": pets.base_url}],
        "components": {"schemas": schemas},
        "paths": {"/fan": {"get": {"operationId": unique("fan"), "responses": response}}},
    }
    message = await call(http, stack, stack.attacker, "import_openapi", {"document": document})
    assert "expand to more than 200000 values once inlined" in refusal(message)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[" * 3000 + "]" * 3000, "nesting depth"),  # libyaml's own flow-level limit speaks first
        ("".join(f"{'  ' * i}k:\n" for i in range(100)) + "  " * 100 + "v: 1\n", "nests deeper than 64"),
        ("plan_id: p\ntasks: !!binary aGk=\n", "tag 'tag:yaml.org,2002:binary' is not accepted"),
        ("plan_id: p\ntasks: !!set {a}\n", "tag 'tag:yaml.org,2002:set' is not accepted"),
        ("plan_id: p\n<<: {tasks: []}\n", "merge keys (<<) are not accepted"),
        ("plan_id: p\ntasks: [.nan]\n", "is not a JSON number"),
    ],
)
async def test_deep_or_non_json_yaml_plans_are_tool_errors_that_say_what(
    stack: Stack, http: httpx.AsyncClient, text: str, problem: str
) -> None:
    before = written(stack)
    message = await call(http, stack, stack.attacker, "create_plan", {"plan": text})
    assert problem in refusal(message)
    assert written(stack) == before


def test_the_size_of_yaml_text_is_checked_before_any_parsing() -> None:
    broken = "[" * 5000  # unparseable: a size refusal proves parsing never started
    with pytest.raises(DocumentError, match="is 5000 bytes; the limit is 4096"):
        load_yaml(broken, max_bytes=4096)
    assert load_yaml("when: 2001-01-01\n200: ok\n", max_bytes=1024) == {"when": "2001-01-01", "200": "ok"}


# Regular expressions and costly schemas ----------------------------------------------------

SHAPES: dict[str, tuple[dict[str, Any], Callable[[str], dict[str, Any]], str]] = {
    "pattern": (
        {"type": "object", "properties": {"s": {"type": "string", "pattern": REDOS}}},
        lambda attack: {"s": attack},
        "does not match '^(a+)+$'",
    ),
    "patternProperties": (
        {"type": "object", "patternProperties": {REDOS: {"type": "string"}}, "additionalProperties": False},
        lambda attack: {attack: "x"},
        "Additional properties are not allowed",
    ),
    "unevaluatedProperties": (
        {"type": "object", "patternProperties": {REDOS: {}}, "unevaluatedProperties": False},
        lambda attack: {attack: 1},
        "Unevaluated properties are not allowed",
    ),
}


async def attack_beside_an_echo(
    http: httpx.AsyncClient, stack: Stack, name: str, arguments: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any], float]:
    """The attacker's call and the victim tenant's echo at the same time: (attack answer,
    echo answer, seconds until both came back)."""
    started = time.monotonic()
    attack, echo = await asyncio.gather(
        call(http, stack, stack.attacker, name, arguments),
        call(http, stack, stack.victim, "echo", {"text": "still here"}),
    )
    return attack, echo, time.monotonic() - started


@pytest.mark.parametrize("shape", sorted(SHAPES))
async def test_a_backtracking_pattern_neither_hangs_its_call_nor_stalls_another_tenant(
    stack: Stack, http: httpx.AsyncClient, pets: PetService, shape: str
) -> None:
    schema, arguments, problem = SHAPES[shape]
    name = await registered(http, stack, http_tool(unique("redos"), pets.base_url, schema))
    before = written(stack)
    attack, echo, seconds = await attack_beside_an_echo(http, stack, name, arguments(REDOS_ATTACK))
    assert problem in refusal(attack)
    assert echo["result"]["structuredContent"] == {"text": "still here"}
    assert seconds < GENEROUS_SECONDS
    assert written(stack)[1] == before[1] + 1  # the victim's echo, and nothing of the attack


async def test_a_schema_that_costs_more_than_the_step_budget_is_refused_off_the_event_loop(
    stack: Stack, http: httpx.AsyncClient, pets: PetService
) -> None:
    schema = {"type": "object", "properties": {"xs": {"type": "array", "items": {"enum": list(range(5000))}}}}
    name = await registered(http, stack, http_tool(unique("costly"), pets.base_url, schema))
    attack, echo, seconds = await attack_beside_an_echo(http, stack, name, {"xs": [-1] * 5000})
    assert "takes more than 500000 steps" in refusal(attack)
    assert echo["result"]["structuredContent"] == {"text": "still here"}
    assert seconds < GENEROUS_SECONDS


async def test_a_check_that_outgrows_the_inline_steps_lets_the_event_loop_run() -> None:
    schema = {"type": "object", "properties": {"xs": {"type": "array", "items": {"enum": list(range(500))}}}}
    turns = 0
    checking = asyncio.create_task(check_arguments(schema, {"xs": [-1] * 200}))
    while not checking.done():  # each turn is the event loop running something else
        turns += 1
        await asyncio.sleep(0)
    assert "is not one of" in str(await checking)
    assert turns > 1  # inline, the check would finish before the loop ever came back


def test_unique_items_is_linear_and_keeps_json_equality() -> None:
    schema = {"type": "object", "properties": {"xs": {"type": "array", "uniqueItems": True}}}
    started = time.monotonic()
    assert argument_problem(schema, {"xs": [{"a": i} for i in range(12_000)]}) is None
    assert time.monotonic() - started < GENEROUS_SECONDS  # quadratic: minutes
    for same in ([1, 1.0], [{"a": [1]}, {"a": [1.0]}], [2**61 - 1, 2**61 - 1]):
        assert "non-unique" in str(argument_problem(schema, {"xs": same}))
    for different in ([1, True], [0, False], ["1", 1], [None, False], [{"a": 1}, {"b": 1}]):
        assert argument_problem(schema, {"xs": different}) is None


@pytest.mark.parametrize(
    ("where", "schema"),
    [
        ("pattern", {"type": "object", "properties": {"s": {"type": "string", "pattern": "^(?=a)"}}}),
        ("backreference", {"type": "object", "properties": {"s": {"type": "string", "pattern": r"(a)\1"}}}),
        ("patternProperties", {"type": "object", "patternProperties": {"(?<=x)y": {}}}),
        ("huge repetition", {"type": "object", "properties": {"s": {"pattern": "(a{1000}){1000}"}}}),
    ],
)
async def test_patterns_re2_cannot_run_are_refused_at_every_registration_entry_point(
    stack: Stack, http: httpx.AsyncClient, pets: PetService, where: str, schema: dict[str, Any]
) -> None:
    tool = http_tool(unique("lookaround"), pets.base_url, schema)
    before = written(stack)
    over_http = await register(http, stack, tool)
    assert over_http.status_code == 400
    assert "is not supported" in json.dumps(over_http.json())
    assert written(stack) == before
    over_mcp = await call(http, stack, stack.attacker, "register_tools", {"tools": [tool]})
    assert "registration_refused" in refusal(over_mcp)
    assert "(patterns run on RE2: no backreferences or lookaround)" in refusal(over_mcp)
    manifest = json.dumps(
        {
            "apiVersion": "mcp-ledger.io/v1alpha1",
            "kind": "MCPTool",
            "metadata": {"name": tool["name"]},
            "spec": {
                "description": "d",
                "inputSchema": schema,
                "binding": {"http": {"method": "GET", "baseUrl": pets.base_url}},
            },
        }
    )
    with pytest.raises(RegistrationError, match="is not supported"):
        load_manifests(manifest)
    assert tool["name"] not in await visible(http, stack, stack.attacker)


def test_schemas_stored_before_these_checks_still_fail_cleanly_at_call_time() -> None:
    looping = {"type": "object", "$defs": {"a": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"}
    assert "nest too deeply" in str(argument_problem(looping, {}))
    dangling = {"type": "object", "properties": {"x": {"$ref": "#/$defs/nope"}}}
    assert "broken reference" in str(argument_problem(dangling, {"x": 1}))
    lookahead = {"type": "object", "properties": {"s": {"type": "string", "pattern": "(?=a)"}}}
    assert "cannot be checked" in str(argument_problem(lookahead, {"s": "a"}))


# Path arguments ----------------------------------------------------------------------------

ENCODED = {
    "..": "%2E%2E",
    ".": "%2E",
    "...": "%2E%2E%2E",
    "../../admin": "..%2F..%2Fadmin",
    "a/b": "a%2Fb",
    "?x=1": "%3Fx%3D1",
    "#top": "%23top",
    "%2e%2e": "%252e%252e",
    "a b": "a%20b",
    "é": "%C3%A9",
    "~user_1-x.y": "~user_1-x.y",
}


async def test_path_arguments_are_encoded_and_never_leave_the_base_path(
    stack: Stack, http: httpx.AsyncClient, pets: PetService
) -> None:
    schema = {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]}
    tool = http_tool(
        unique("items"),
        f"{pets.base_url}/api/v1",
        schema,
        path="/items/{id}/detail",
        parameters={"id": "path"},
    )
    name = await registered(http, stack, tool)
    for value, encoded in ENCODED.items():
        message = await call(http, stack, stack.attacker, name, {"id": value})
        assert message["result"]["isError"] is False, (value, message)
        assert pets.raw_paths[-1] == f"/api/v1/items/{encoded}/detail", value
    assert len(pets.raw_paths) == len(ENCODED)
    empty = await call(http, stack, stack.attacker, name, {"id": ""})
    assert "path argument 'id' may not be empty" in refusal(empty)
    assert len(pets.raw_paths) == len(ENCODED)


async def test_header_arguments_cannot_inject_headers(
    stack: Stack, http: httpx.AsyncClient, pets: PetService
) -> None:
    schema = {"type": "object", "properties": {"x-note": {"type": "string"}}}
    name = await registered(
        http, stack, http_tool(unique("header"), pets.base_url, schema, parameters={"x-note": "header"})
    )
    message = await call(http, stack, stack.attacker, name, {"x-note": "a\r\nX-Injected: 1"})
    assert "header argument 'x-note' has control characters" in refusal(message)
    assert pets.raw_paths == []


@pytest.mark.parametrize(
    ("binding", "problem"),
    [
        ({"path": "/items/{+id}", "parameters": {"+id": "path"}}, "only simple {name} expansion"),
        ({"path": "/items/{id}/{other}", "parameters": {"id": "path"}}, "{other} is not a declared path"),
        ({"path": "/items", "parameters": {"id": "path"}}, "'id' does not appear in the path"),
        ({"path": "/items/../admin"}, "'.' and '..' segments are not allowed"),
        ({"path": "/items/{id", "parameters": {"id": "path"}}, "unbalanced braces"),
        ({"base_url": "http://127.0.0.1:9/api?x=1"}, "base_url may not carry a query"),
    ],
)
async def test_path_templates_that_let_arguments_move_the_request_are_refused(
    stack: Stack, http: httpx.AsyncClient, pets: PetService, binding: dict[str, Any], problem: str
) -> None:
    schema = {"type": "object", "properties": {"id": {"type": "string"}}}
    tool = http_tool(unique("template"), pets.base_url, schema)
    tool["binding"] = {**tool["binding"], **binding}
    response = await register(http, stack, tool)
    assert response.status_code == 400
    assert problem in json.dumps(response.json())


async def test_a_service_answering_deeply_nested_json_is_a_tool_error(
    stack: Stack, http: httpx.AsyncClient, pets: PetService
) -> None:
    name = await registered(
        http, stack, http_tool(unique("deep"), pets.base_url, {"type": "object"}, path="/deep")
    )
    message = await call(http, stack, stack.attacker, name, {})
    assert "bad_response: the service sent unusable JSON: the response nests deeper than 63" in refusal(
        message
    )


# Depth and shape over HTTP -----------------------------------------------------------------


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def tools_call_body(arguments: str) -> bytes:
    params = f'{{"name":"echo","arguments":{{"text":{arguments}}},"_meta":{json.dumps(META)}}}'
    return f'{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{params}}}'.encode()


def deep_schema(levels: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


def tool_body(schema: dict[str, Any]) -> bytes:
    binding = {"kind": "http", "method": "GET", "base_url": "http://127.0.0.1:9"}
    tool = {"name": unique("t"), "description": "d", "input_schema": schema, "binding": binding}
    return json.dumps({"tools": [tool]}).encode()


LOOP = {
    "type": "object",
    "$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}},
    "$ref": "#/$defs/a",
}
CHAIN = {
    "type": "object",
    "$defs": {**{f"a{i}": {"$ref": f"#/$defs/a{i + 1}"} for i in range(40)}, "a40": {}},
    "allOf": [{"$ref": "#/$defs/a0"}],
}
HTTP_ATTACKS = {
    "mcp body 1,000 deep": ("/mcp", tools_call_body(nested(1000)), 400, "nests deeper than 72 levels"),
    "mcp body 100,000 deep": ("/mcp", tools_call_body(nested(100_000)), 400, "nests deeper than 72 levels"),
    "mcp arguments 66 deep": (
        "/mcp",
        tools_call_body(nested(66)),
        200,
        "deeper than 64 levels in the arguments",
    ),
    "tools body 1,000 deep": ("/v1/tools", nested(1000).encode(), 400, "the body nests deeper than 64"),
    "tools body 100,000 deep": ("/v1/tools", nested(100_000).encode(), 400, "the body nests deeper than 64"),
    "schema 400 deep": ("/v1/tools", tool_body(deep_schema(400)), 400, "the body nests deeper than 64"),
    "schema reference loop": ("/v1/tools", tool_body(LOOP), 400, "references loop without descending"),
    "schema reference chain": (
        "/v1/tools",
        tool_body(CHAIN),
        400,
        "chain 43 subschemas deep; the limit is 32",
    ),
    "dangling reference": (
        "/v1/tools",
        tool_body({"type": "object", "properties": {"x": {"$ref": "#/$defs/x"}}}),
        400,
        "the reference '#/$defs/x' points at nothing",
    ),
    "erasure body 1,000 deep": ("/admin/erasures", nested(1000).encode(), 400, "nests deeper than 64"),
    "opt-out body 1,000 deep": ("/admin/opt-outs", nested(1000).encode(), 400, "nests deeper than 64"),
    "erasure body NaN": ("/admin/erasures", b'{"subject": NaN}', 400, "NaN is not a JSON number"),
}


@pytest.mark.parametrize("attack", sorted(HTTP_ATTACKS))
async def test_deep_and_looping_input_over_http_is_a_4xx_that_says_what(
    stack: Stack, http: httpx.AsyncClient, attack: str
) -> None:
    route, body, status, problem = HTTP_ATTACKS[attack]
    headers = {**HEADERS, "mcp-method": "tools/call", "mcp-name": "echo", **_auth(stack.attacker)}
    before = written(stack)
    response = await http.post(stack.base + route, content=body, headers=headers)
    assert response.status_code == status, response.text
    assert problem in response.text
    assert "-32603" not in response.text
    assert written(stack) == before


def graph(**parts: Any) -> dict[str, Any]:
    return {"plan_id": "shape", "nodes": [{"id": "a", "tool": "echo", "params": {"text": "x"}}], **parts}


def condition_plan(condition: str) -> dict[str, Any]:
    task = {"id": "a", "tool_name": "echo", "parameters": {"text": "x"}, "condition": condition}
    return {"plan_id": "cond", "tasks": [task]}


PLAN_ATTACKS: dict[str, tuple[dict[str, Any], str]] = {
    "edges: 5": (graph(edges=5), "edges: a list, not int"),
    "nodes: text": ({"plan_id": "p", "nodes": "x"}, "nodes: a list, not str"),
    "a node that is a number": ({"plan_id": "p", "nodes": [5]}, "nodes[0]: every node is an object"),
    "dependencies as text": (
        {"plan_id": "p", "nodes": [{"id": "a", "tool": "echo", "dependencies": "abc"}]},
        "nodes[0].dependencies: a list of node ids",
    ),
    "an edge from a number": (graph(edges=[{"from": 1, "to": "a"}]), "edges[0]: must join two node ids"),
    "a condition that is a list": (
        graph(edges=[{"from": "a", "to": "a", "condition": [1]}]),
        "edges[0].condition: a string, not list",
    ),
    "error_handlers: 5": (graph(error_handlers=5), "error_handlers: a list, not int"),
    "compensate: 5": (graph(error_handlers=[{"node": "a", "compensate": 5}]), "compensate: an object"),
    "tasks keyed with a number": ({"plan_id": "p", "tasks": {"a": 5}}, "tasks.a: a task is an object"),
    "498 nested parentheses": (condition_plan("(" * 498 + "true" + ")" * 498), "nest at most 32 levels"),
    "200 nested nots": (condition_plan("not " * 200 + "true"), "nest at most 32 levels"),
}


@pytest.mark.parametrize("attack", sorted(PLAN_ATTACKS))
async def test_malformed_plan_shapes_are_tool_errors_naming_the_part(
    stack: Stack, http: httpx.AsyncClient, attack: str
) -> None:
    plan, problem = PLAN_ATTACKS[attack]
    before = written(stack)
    message = await call(http, stack, stack.attacker, "create_plan", {"plan": plan})
    assert problem in refusal(message)
    assert written(stack) == before


async def test_openapi_documents_of_the_wrong_shape_are_refused_by_name(
    stack: Stack, http: httpx.AsyncClient, pets: PetService
) -> None:
    base = {"openapi": "3.1.0", "servers": [{"url": pets.base_url}]}
    shapes = {
        "paths must be an object, not int": {**base, "paths": 5},
        "a parameter must be an object, not int": {**base, "paths": {"/x": {"get": {"parameters": [5]}}}},
        "responses must be an object, not list": {**base, "paths": {"/x": {"get": {"responses": []}}}},
    }
    for problem, document in shapes.items():
        message = await call(http, stack, stack.attacker, "import_openapi", {"document": document})
        assert problem in refusal(message)


# Properties: whatever the shape, a refusal that says what, never another exception ---------

PROPERTIES = settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
ids = st.sampled_from(["a", "b"]) | json_values
nodes = json_values | st.lists(
    st.fixed_dictionaries(
        {"id": ids},
        optional={"tool": st.just("echo") | json_values, "dependencies": json_values, "params": json_values},
    ),
    max_size=3,
)
edges = json_values | st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "from": ids,
            "to": ids,
            "condition": st.sampled_from(["a.status == 'ok'", "(("]) | json_values,
        },
    ),
    max_size=3,
)
handlers = json_values | st.lists(
    st.fixed_dictionaries(
        {}, optional={"node": ids, "compensate": json_values, "on_error": json_values, "retry": json_values}
    ),
    max_size=2,
)


@PROPERTIES
@given(
    nodes=nodes,
    edges=edges,
    handlers=handlers,
    tasks=json_values | st.dictionaries(st.text(max_size=3), json_values),
)
def test_any_json_in_any_part_of_a_plan_is_a_plan_form_error_or_a_plan(
    nodes: Any, edges: Any, handlers: Any, tasks: Any
) -> None:
    for raw in ({"nodes": nodes, "edges": edges, "error_handlers": handlers}, {"tasks": tasks}):
        try:
            plan = with_derived_dependencies(normalise_plan(raw, plan_id="p"))
        except PlanFormError:
            continue  # the only exception allowed; its sentences are checked by the table above
        plan_problems(plan, builtin_catalog(), ("admin",))


def test_many_conditioned_edges_into_one_node_do_not_nest() -> None:
    sources = [{"id": f"s{i}", "tool": "echo", "params": {"text": "x"}} for i in range(35)]
    plan = normalise_plan(
        {
            "plan_id": "fan-in",
            "nodes": [*sources, {"id": "z", "tool": "echo", "params": {"text": "x"}}],
            "edges": [{"from": f"s{i}", "to": "z", "condition": f"s{i}.output"} for i in range(35)],
        }
    )
    condition = plan.task("z").condition
    assert condition is not None
    parse_condition(condition)  # nested one level per edge, 35 edges would pass the bound of 32


yamlish = st.lists(
    st.sampled_from(["a:", " ", "\n", "- ", "[", "]", "{", "}", "&x", "*x", "!!", "<<:", "1", "'q'"])
)


@PROPERTIES
@given(text=st.text(max_size=200) | yamlish.map("".join))
def test_yaml_text_becomes_bounded_json_or_a_document_error(text: str) -> None:
    try:
        value = load_yaml(text, max_bytes=10_000)
    except DocumentError:
        return  # the only exception allowed
    json.dumps(value, allow_nan=False)
    assert nesting_problem(value) is None


tricky_text = st.text(alphabet='[]{}"\\a', max_size=8)
"""Strings full of brackets, quotes and backslashes: what a text-level count must see past."""
bracketed = st.recursive(
    tricky_text | st.integers(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(tricky_text, inner, max_size=3),
    max_leaves=8,
)


@PROPERTIES
@given(value=json_values | bracketed, limit=st.integers(min_value=0, max_value=6))
def test_the_text_nesting_count_agrees_with_the_parsed_value(value: Any, limit: int) -> None:
    dumped = json.dumps(value)
    assume("Infinity" not in dumped)  # not JSON: refused for that alone
    text = dumped.encode()
    assert nests_deeper(text, limit) == (nesting_problem(value, limit) is not None)
    try:
        assert load_json(text, max_bytes=len(text), max_depth=limit) == value
    except DocumentError:
        assert nesting_problem(value, limit) is not None
