"""The suite's `tasks-*` extension scenarios (SEP-2663) against the gateway on its own.

They are extension scenarios, off the spec timeline, so they run with `--force`. Each calls
fixture tools (`greet`, `slow_compute`, `failing_job`, `protocol_error_job`, `confirm_delete`,
`test_tool_with_task`) the gateway does not have; those checks are for the gateway fronting a
fixture MCP server (test_fronted_tasks.py). The checks below need no fixture tool, and the gateway
passes each, by name.
"""

from __future__ import annotations

import pytest

from tests.support.conformance import Check, Suite, run_scenario

pytestmark = pytest.mark.conformance

SCENARIOS = ("tasks-capability-negotiation", "tasks-dispatch-and-envelope")
NATIVE_CHECKS = (
    "tasks-capability-negotiation/tasks-extension-advertised",
    "tasks-capability-negotiation/sep-2663-tasks-methods-non-declaring",
    "tasks-capability-negotiation/wire-schema-valid",
    "tasks-dispatch-and-envelope/sep-2663-tasks-result-removed-method-not-found",
    "tasks-dispatch-and-envelope/tasks-removed-tasks-list",
    "tasks-dispatch-and-envelope/sep-2663-tasks-get-invalid-task-id-32602",
    "tasks-dispatch-and-envelope/wire-schema-valid",
)


@pytest.fixture(scope="module")
def task_checks(suite: Suite, embedded_target: str) -> dict[str, Check]:
    return {
        check.key: check for scenario in SCENARIOS for check in run_scenario(suite, embedded_target, scenario)
    }


@pytest.mark.parametrize("key", NATIVE_CHECKS)
def test_the_gateway_passes_the_tasks_check_that_needs_no_fixture_tool(
    task_checks: dict[str, Check], key: str
) -> None:
    check = task_checks.get(key)
    assert check is not None, f"{key} was not reported: {sorted(task_checks)}"
    assert check.status == "SUCCESS", f"{key}: {check.status} {check.message}"
