"""The suite's `tasks-*` scenarios through the gateway fronting a task-unaware MCP server.

tests/support/tasks_upstream.py offers the plain tools the scenarios call (`greet`,
`slow_compute`, `failing_job`, `protocol_error_job`, `confirm_delete`, `multi_input`,
`test_tool_with_task`) and knows nothing of tasks; the gateway is started as `mcp-ledger serve
--no-auth --upstream fixture=URL --task-support fixture:TOOL=MODE…`, so every task the
scenarios see (created, polled, settled, cancelled) is the gateway's: the upstream call is a
CallTool a worker runs, and tasks/get is served from its recorded outcome.

The test holds the run to the exact set of passing checks and the exact set of failing ones
(each with its reason), so a check fixed or newly broken fails it either way.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support.conformance import Check, Suite, run_scenario

pytestmark = pytest.mark.conformance

SCENARIOS = (
    "tasks-lifecycle",
    "tasks-capability-negotiation",
    "tasks-wire-fields",
    "tasks-request-state-removal",
    "tasks-mrtr-input",
    "tasks-request-headers",
    "tasks-dispatch-and-envelope",
    "tasks-status-notifications",
    "tasks-required-task-error",
    "tasks-mrtr-composition",
)
PARALLEL = 3
"""Scenarios run at once: each has its own connection and its own tasks."""

PASSING = frozenset(
    {
        "tasks-lifecycle/tasks-sync-tool-call",
        "tasks-lifecycle/sep-2663-result-type-task-on-create",
        "tasks-lifecycle/sep-2663-tasks-get-status-working",
        "tasks-lifecycle/sep-2663-tasks-get-status-completed",
        "tasks-lifecycle/sep-2663-tool-error-uses-completed-status",
        "tasks-lifecycle/sep-2663-tasks-get-status-failed",
        "tasks-lifecycle/sep-2663-cancel-ack-empty-result",
        "tasks-lifecycle/tasks-cancel-terminal-idempotent-ack",
        "tasks-lifecycle/wire-schema-valid",
        "tasks-capability-negotiation/tasks-extension-advertised",
        "tasks-capability-negotiation/sep-2663-tasks-methods-non-declaring",
        "tasks-capability-negotiation/sep-2663-server-rejects-undeclared-client",
        "tasks-capability-negotiation/tasks-per-request-meta-opt-in",
        "tasks-capability-negotiation/wire-schema-valid",
        "tasks-wire-fields/tasks-wire-field-renames",
        "tasks-wire-fields/tasks-no-early-ttl-expiry",
        "tasks-wire-fields/tasks-no-related-task-meta-on-inlined-result",
        "tasks-wire-fields/wire-schema-valid",
        "tasks-request-state-removal/tasks-create-result-no-request-state",
        "tasks-request-state-removal/tasks-get-detailed-no-request-state",
        "tasks-request-state-removal/wire-schema-valid",
        "tasks-mrtr-input/wire-schema-valid",
        "tasks-request-headers/tasks-headers-tolerate-mcp-method-on-tools-call",
        "tasks-request-headers/sep-2663-routing-headers-accepted-on-tasks-get",
        "tasks-request-headers/tasks-headers-reject-mismatched-method",
        "tasks-request-headers/sep-2663-server-rejects-mismatched-mcp-name-on-tasks-get",
        "tasks-request-headers/wire-schema-valid",
        "tasks-dispatch-and-envelope/sep-2663-tasks-result-removed-method-not-found",
        "tasks-dispatch-and-envelope/tasks-removed-tasks-list",
        "tasks-dispatch-and-envelope/tasks-server-directed-creation-no-hint",
        "tasks-dispatch-and-envelope/sep-2663-legacy-task-param-ignored",
        "tasks-dispatch-and-envelope/tasks-immediate-result-shortcut",
        "tasks-dispatch-and-envelope/sep-2663-durable-create-strong-consistency",
        "tasks-dispatch-and-envelope/sep-2663-tasks-get-invalid-task-id-32602",
        "tasks-dispatch-and-envelope/wire-schema-valid",
        "tasks-required-task-error/sep-2663-server-returns-missing-capability-when-required",
        "tasks-required-task-error/sep-2663-server-returns-missing-capability-data-shape",
        "tasks-required-task-error/wire-schema-valid",
        "tasks-mrtr-composition/wire-schema-valid",
        "tasks-mrtr-input/sep-2663-tasks-get-status-input-required",
        "tasks-mrtr-input/tasks-mrtr-tasks-update-resumes",
        "tasks-mrtr-input/tasks-mrtr-partial-fulfillment",
        "tasks-dispatch-and-envelope/tasks-result-type-complete-on-non-task-responses",
    }
)
"""Every check the run must pass, by `scenario/check-id`."""

EXPECTED_FAILING: dict[str, str] = {
    "tasks-mrtr-composition/sep-2663-mrtr-synchronous-before-task-creation": (
        "round 1 must be an input_required result before any task exists, but the gateway "
        "answers a task-supporting call of a negotiating client with a task at once"
    ),
}
"""Checks that fail today, each with why. Equality: a fixed check must leave the list."""
NOT_SCORED = frozenset({"tasks-status-notifications/tasks-status-notifications"})
"""Reported SKIPPED by the suite itself (its harness for notifications/tasks is pending)."""


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("tasks_fronted"),
        pytest.param("fronted_distributed", marks=pytest.mark.integration),
    ],
)
def fronted_checks(suite: Suite, request: pytest.FixtureRequest) -> tuple[Check, ...]:
    """Every scenario's checks through the gateway: embedded (`serve`) or distributed (API
    and worker processes on Kafka, PostgreSQL and Redis)."""
    url: str = request.getfixturevalue(f"{request.param}_target")
    with ThreadPoolExecutor(PARALLEL) as pool:
        runs = list(pool.map(lambda scenario: run_scenario(suite, url, scenario), SCENARIOS))
    return tuple(check for checks in runs for check in checks)


def _report(checks: tuple[Check, ...]) -> str:
    return "\n".join(f"  {c.status} {c.key}: {c.message[:300]}" for c in checks)


def test_every_tasks_scenario_reported_checks(fronted_checks: tuple[Check, ...]) -> None:
    assert {c.scenario for c in fronted_checks} == set(SCENARIOS), _report(fronted_checks)


def test_the_gateway_fronting_a_task_unaware_server_passes_exactly_the_listed_tasks_checks(
    fronted_checks: tuple[Check, ...],
) -> None:
    passed = {c.key for c in fronted_checks if c.status == "SUCCESS"}
    assert passed == PASSING, _report(fronted_checks)


def test_the_only_failing_tasks_checks_are_the_named_ones(fronted_checks: tuple[Check, ...]) -> None:
    failed = {c.key for c in fronted_checks if c.status == "FAILURE"}
    assert failed == set(EXPECTED_FAILING), _report(fronted_checks)


def test_nothing_else_is_reported(fronted_checks: tuple[Check, ...]) -> None:
    other = {c.key for c in fronted_checks if c.status not in {"SUCCESS", "FAILURE"}}
    assert other == NOT_SCORED, _report(fronted_checks)
