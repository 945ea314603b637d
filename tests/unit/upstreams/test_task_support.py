"""The gateway's task support for upstream tools, pure: a server entry names it per tool or
by pattern (an exact name wins, unnamed tools are forbidden), the exposed definition and
the ToolSpec agents see carry it, and every way in (manifest, `serve --task-support`) maps
onto the same field and refuses a bad mode."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from mcp_ledger.checks.server_manifests import load_server_manifests
from mcp_ledger.domain.upstreams.aggregate import exposed_definition
from mcp_ledger.domain.upstreams.events import UpstreamDefinition
from mcp_ledger.domain.upstreams.model import UpstreamServer
from mcp_ledger.mcp_api.transport.called_tool import task_name_mismatch
from mcp_ledger.wiring.upstreams import parse_task_support

MANIFEST = """
apiVersion: mcp-ledger.io/v1alpha1
kind: MCPServer
metadata: {name: jobs}
spec:
  url: http://127.0.0.1:9/mcp
  taskSupport: {slow_compute: optional, "batch_*": required}
"""


def _server(**task_support: str) -> UpstreamServer:
    return UpstreamServer.model_validate(
        {"name": "jobs", "url": "http://u/mcp", "task_support": task_support}
    )


def test_an_exact_tool_name_wins_over_a_pattern_and_unnamed_tools_are_forbidden() -> None:
    server = _server(**{"slow": "required", "s*": "optional"})
    assert server.task_support_for("slow") == "required"
    assert server.task_support_for("sleepy") == "optional"
    assert server.task_support_for("greet") == "forbidden"


def test_a_star_pattern_is_the_servers_default() -> None:
    assert _server(**{"*": "optional"}).task_support_for("anything") == "optional"


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(ValidationError):
        _server(slow="sometimes")


def test_the_exposed_tool_carries_the_gateways_task_support_into_its_spec() -> None:
    server = _server(slow="optional").model_copy(update={"prefix": "jobs"})
    tool = UpstreamDefinition.of("slow", {"name": "slow", "inputSchema": {"type": "object"}})
    spec = exposed_definition(server, tool).spec()
    assert (spec.name, spec.task_support) == ("jobs_slow", "optional")
    plain = UpstreamDefinition.of("greet", {"name": "greet", "inputSchema": {"type": "object"}})
    assert exposed_definition(server, plain).spec().task_support == "forbidden"


def test_a_manifest_names_task_support_as_task_support() -> None:
    [arguments] = load_server_manifests(MANIFEST, env={})
    assert arguments["task_support"] == {"slow_compute": "optional", "batch_*": "required"}


def test_serve_task_support_entries_group_by_server() -> None:
    entries = ["a:slow=optional", "a:x_*=required", "b:job=optional"]
    assert parse_task_support(entries) == {
        "a": {"slow": "optional", "x_*": "required"},
        "b": {"job": "optional"},
    }


@pytest.mark.parametrize("entry", ["a:slow", "a=optional", "a:slow=maybe", "1a:slow=optional", "a:=optional"])
def test_a_malformed_serve_task_support_entry_is_refused(entry: str) -> None:
    with pytest.raises(ValueError, match="NAME:TOOL="):
        parse_task_support([entry])


@pytest.mark.parametrize(
    ("payload", "header", "refused"),
    [
        ({"method": "tasks/get", "params": {"taskId": "t1"}}, "t1", False),
        ({"method": "tasks/get", "params": {"taskId": "t1"}}, None, False),
        ({"method": "tasks/cancel", "params": {"taskId": "t1"}}, "t2", True),
        ({"method": "tasks/update", "params": {}}, "t1", True),
        ({"method": "tools/call", "params": {"name": "x"}}, "y", False),  # the SDK's own rung
    ],
)
def test_a_tasks_request_whose_mcp_name_header_names_another_task_is_refused(
    payload: dict[str, object], header: str | None, refused: bool
) -> None:
    assert (task_name_mismatch(payload, header) is not None) is refused
