"""No LEDGER_* of the calling shell reaches a test, yet scripts/services.sh still gets its own
settings from the shell (tests/support/environment.py, tests/conftest.py); and the tracer
provider tests install shares no state with hypothesis (tests/support/telemetry.py)."""

from __future__ import annotations

import os
import random

from opentelemetry import trace

from tests.support import environment
from tests.support.environment import services_script_env, without_ledger_variables
from tests.support.telemetry import recorded_spans


def test_a_test_sees_no_ledger_variable_of_the_shell() -> None:
    assert sorted(name for name in os.environ if name.startswith("LEDGER_")) == []


def test_the_variables_removed_are_given_back_and_the_ones_added_meanwhile_dropped() -> None:
    shell = {"LEDGER_STORE": "postgresql+asyncpg://prod/db", "PATH": "/bin"}
    with without_ledger_variables(shell) as removed:
        assert shell == {"PATH": "/bin"}
        shell["LEDGER_KEK"] = "set by a test"
    assert removed == {"LEDGER_STORE": "postgresql+asyncpg://prod/db"}
    assert shell == {"LEDGER_STORE": "postgresql+asyncpg://prod/db", "PATH": "/bin"}


def test_the_services_script_gets_its_own_settings_from_the_shell_and_no_gateway_setting() -> None:
    shell = {"LEDGER_PG_PORT": "35432", "LEDGER_SERVICES_DIR": "/srv/ledger", "LEDGER_STORE": "x"}
    with without_ledger_variables(shell):
        script = services_script_env()
    assert (script["LEDGER_PG_PORT"], script["LEDGER_SERVICES_DIR"]) == ("35432", "/srv/ledger")
    assert "LEDGER_STORE" not in script
    assert environment.SERVICES_SCRIPT_SETTINGS.fullmatch("LEDGER_STORE") is None


def test_spans_made_under_the_tests_tracer_provider_leave_the_global_random_alone() -> None:
    # A gateway thread's spans would otherwise disturb hypothesis, which watches `random`.
    before = random.getstate()
    with recorded_spans() as spans:
        for _ in range(3):
            trace.get_tracer("test").start_span("probe").end()
        assert len(spans.get_finished_spans()) == 3
    assert random.getstate() == before
