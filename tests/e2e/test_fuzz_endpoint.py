"""Fuzzing the MCP endpoint over real HTTP: malformed JSON, wrong JSON-RPC shapes, unknown
methods, huge ids, wrong parameter types and schema-violating arguments for every tool.

Every answer must be a well-formed JSON-RPC error (or a tool error for bad arguments), never
a 5xx; the server answers a ping afterwards; and refused input writes nothing to the store.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from tests.support.clients import INITIALIZE
from tests.support.embedded import RunningGateway, embedded_settings
from tests.support.schema_values import json_values, values_of
from tests.support.threaded import threaded_gateway

PROTOCOL = "2026-07-28"
META = {
    "io.modelcontextprotocol/protocolVersion": PROTOCOL,
    "io.modelcontextprotocol/clientInfo": {"name": "fuzz", "version": "0"},
    "io.modelcontextprotocol/clientCapabilities": {},
}
METHODS = [
    "ping",
    "tools/list",
    "tools/call",
    "resources/read",
    "resources/list",
    "prompts/get",
    "initialize",
]
FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)

request_ids = (
    st.integers(min_value=-(2**80), max_value=2**80)
    | st.text(max_size=2000)
    | st.none()
    | st.floats(allow_nan=False)
    | st.lists(st.integers(), max_size=2)
    | st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)
)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    with threaded_gateway(embedded_settings(tmp_path_factory.mktemp("fuzz"))) as running:
        yield running


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10.0) as client:
        yield client


def _headers(method: object = None, name: object = None) -> dict[str, str]:
    headers = {
        "accept": "application/json, text/event-stream",
        "content-type": "application/json",
        "mcp-protocol-version": PROTOCOL,
    }
    if isinstance(method, str) and method.isprintable() and method.isascii():
        headers["mcp-method"] = method
    if isinstance(name, str) and name.isprintable() and name.isascii() and name:
        headers["mcp-name"] = name
    return headers


def _written(running: RunningGateway) -> tuple[int, int]:
    """Rows in events and commands of the embedded store (the outbox only shrinks as the
    relay publishes, so it is no measure of writes)."""
    db = Path(running.runtime.settings.data_dir) / "ledger.db"
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        events, commands = (
            conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("events", "commands")
        )
    return int(events), int(commands)


def _post(
    http: httpx.Client, running: RunningGateway, body: bytes, headers: dict[str, str]
) -> httpx.Response:
    response = http.post(running.url, content=body, headers=headers)
    assert response.status_code < 500, response.text
    return response


def _assert_jsonrpc_error_or_nothing(response: httpx.Response) -> dict[str, Any] | None:
    """The answer is empty (an accepted notification) or a well-formed JSON-RPC message."""
    if response.status_code == 202 and not response.content:
        return None
    message = response.json()
    assert message["jsonrpc"] == "2.0"
    if "error" in message:
        assert isinstance(message["error"]["code"], int)
        assert isinstance(message["error"]["message"], str)
        assert message["error"]["message"]
    else:
        assert response.status_code == 200
        assert "result" in message
    assert isinstance(message, dict)
    return message


def _rpc(method: str, params: dict[str, Any], request_id: int = 1) -> bytes:
    return json.dumps(
        {"jsonrpc": "2.0", "id": request_id, "method": method, "params": {**params, "_meta": META}}
    ).encode()


def _still_answers_ping(http: httpx.Client, running: RunningGateway) -> None:
    """A 2025-11-25 ping (the 2026-07-28 protocol has none) and a stateless tools/list."""
    legacy = _headers()
    del legacy["mcp-protocol-version"]
    ping = http.post(running.url, content=b'{"jsonrpc":"2.0","id":7,"method":"ping"}', headers=legacy)
    assert ping.status_code == 200, ping.text
    assert ping.json() == {"jsonrpc": "2.0", "id": 7, "result": {}}
    listing = http.post(running.url, content=_rpc("tools/list", {}), headers=_headers("tools/list"))
    assert listing.status_code == 200, listing.text
    assert listing.json()["result"]["tools"]


def test_malformed_bodies_get_a_json_rpc_error_and_write_nothing(
    served: RunningGateway, http: httpx.Client
) -> None:
    before = _written(served)

    @FUZZ
    @given(body=st.binary(max_size=300) | st.text(max_size=300).map(str.encode), legacy=st.booleans())
    def run(body: bytes, legacy: bool) -> None:
        headers = _headers()
        if legacy:
            del headers["mcp-protocol-version"]
        response = _post(http, served, body, headers)
        message = _assert_jsonrpc_error_or_nothing(response)
        assume(message is not None)

    run()
    _still_answers_ping(http, served)
    assert _written(served) == before


def test_wrong_json_rpc_shapes_unknown_methods_and_huge_ids_are_refused_cleanly(
    served: RunningGateway, http: httpx.Client
) -> None:
    before = _written(served)

    @FUZZ
    @given(
        version=st.sampled_from(["2.0", "1.0", 2, None]),
        request_id=request_ids,
        method=st.sampled_from(METHODS) | st.text(max_size=40),
        params=json_values,
        drop=st.sets(st.sampled_from(["jsonrpc", "id", "method", "params"])),
    )
    def run(version: object, request_id: object, method: object, params: object, drop: set[str]) -> None:
        # Nothing generated here may be a valid tool call: such a call would rightly be recorded.
        assume(method != "tools/call" or not isinstance(params, dict))
        message = {"jsonrpc": version, "id": request_id, "method": method, "params": params}
        body = json.dumps({k: v for k, v in message.items() if k not in drop}).encode()
        _assert_jsonrpc_error_or_nothing(_post(http, served, body, _headers(method)))

    run()
    _still_answers_ping(http, served)
    assert _written(served) == before


def test_wrong_parameter_types_of_known_methods_are_json_rpc_errors(
    served: RunningGateway, http: httpx.Client
) -> None:
    before = _written(served)
    fields = {
        "tools/call": ["name", "arguments"],
        "resources/read": ["uri"],
        "prompts/get": ["name", "arguments"],
        "tools/list": ["cursor"],
    }

    @FUZZ
    @given(method=st.sampled_from(sorted(fields)), data=st.data())
    def run(method: str, data: st.DataObject) -> None:
        params = {name: data.draw(json_values, label=name) for name in fields[method]}
        if method == "tools/call":
            # A real tool name with wrong-typed arguments, or a wrong-typed name.
            assume(not isinstance(params["arguments"], dict) or not isinstance(params["name"], str))
        response = _post(http, served, _rpc(method, params), _headers(method, params.get("name")))
        message = _assert_jsonrpc_error_or_nothing(response)
        assert message is not None
        if "result" in message and method == "tools/call":
            assert message["result"].get("isError") is True

    run()
    _still_answers_ping(http, served)
    assert _written(served) == before


def _tool_schemas(http: httpx.Client, running: RunningGateway) -> dict[str, dict[str, Any]]:
    response = http.post(running.url, content=_rpc("tools/list", {}), headers=_headers("tools/list"))
    return {tool["name"]: tool["inputSchema"] for tool in response.json()["result"]["tools"]}


def _violations(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Arguments that break the schema: a valid instance with a required key dropped, an
    unknown key added or a property of the wrong type, or no object at all."""
    validator = Draft202012Validator(schema)
    properties = sorted(schema.get("properties", {}))
    required = sorted(schema.get("required", []))

    def broken(valid: dict[str, Any], choice: st.DataObject) -> Any:
        kinds = ["replace"] * bool(properties) + ["drop"] * bool(required) + ["extra"]
        kind = choice.draw(st.sampled_from(kinds))
        if kind == "drop":
            valid = {k: v for k, v in valid.items() if k != choice.draw(st.sampled_from(required))}
        elif kind == "extra":
            valid = {**valid, "zz_not_in_schema": choice.draw(json_values)}
        else:
            valid = {**valid, choice.draw(st.sampled_from(properties)): choice.draw(json_values)}
        return valid

    objects = (
        st.builds(broken, values_of(schema), st.data()) if schema.get("type") == "object" else st.nothing()
    )
    return (objects | st.lists(json_values, max_size=2) | st.text(max_size=5) | st.integers()).filter(
        lambda arguments: not validator.is_valid(arguments)
    )


def test_schema_violating_arguments_of_every_tool_are_refused_before_anything_is_written(
    served: RunningGateway, http: httpx.Client
) -> None:
    schemas = _tool_schemas(http, served)
    assert {"echo", "note_set", "session_open", "create_plan", "blob_put"} <= set(schemas)
    before = _written(served)

    @settings(FUZZ, max_examples=12 * len(schemas))
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(schemas)), label="tool")
        arguments = data.draw(_violations(schemas[name]), label="arguments")
        body = _rpc("tools/call", {"name": name, "arguments": arguments})
        message = _assert_jsonrpc_error_or_nothing(_post(http, served, body, _headers("tools/call", name)))
        assert message is not None
        if "result" in message:
            assert message["result"]["isError"] is True
            text = message["result"]["content"][0]["text"]
            assert text.startswith("invalid arguments at"), text
        else:
            assert message["error"]["code"] == -32602, message

    run()
    _still_answers_ping(http, served)
    assert _written(served) == before


def test_an_initialize_the_sdk_refuses_opens_no_ledger_session(
    served: RunningGateway, http: httpx.Client
) -> None:
    @FUZZ
    @example(path=("jsonrpc",), value="1.0", header=None)
    @example(path=("params",), value=None, header=None)
    @example(path=(), value=None, header=PROTOCOL)
    @given(
        path=st.sampled_from(
            [("jsonrpc",), ("id",), ("params",), ("params", "capabilities"), ("params", "clientInfo"), ()]
        ),
        value=json_values,
        header=st.none() | st.sampled_from([PROTOCOL, "1999-01-01", "2025-11-25"]),
    )
    def run(path: tuple[str, ...], value: Any, header: str | None) -> None:
        request = json.loads(json.dumps(INITIALIZE))
        if path:
            parent = request["params"] if len(path) == 2 else request
            parent[path[-1]] = value
        headers = _headers("initialize")
        del headers["mcp-protocol-version"]
        if header is not None:
            headers["mcp-protocol-version"] = header
        before = _written(served)
        response = _post(http, served, json.dumps(request).encode(), headers)
        message = _assert_jsonrpc_error_or_nothing(response)
        if message is None or "error" in message:
            assert response.headers.get("mcp-session-id") is None
            assert _written(served) == before
        else:
            assert response.headers.get("mcp-session-id")

    run()
    _still_answers_ping(http, served)
