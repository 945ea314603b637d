"""JSON logs carry the command, correlation id and tenant of the work in hand."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from mcp_ledger.consumers.command_handler import CommandHandler
from mcp_ledger.consumers.tools import BUILTIN_RUNNERS, ToolInvocation, ToolOutcome
from mcp_ledger.domain.commands import CallTool, CommandEnvelope
from mcp_ledger.domain.tools import builtin_catalog
from mcp_ledger.eventstore.ports import StoredEvent
from mcp_ledger.eventstore.sql import SqlEventStore
from mcp_ledger.observability.logs import ContextFilter, JsonFormatter, configure_logging, log_context
from mcp_ledger.observability.tracing import span
from tests.support.telemetry import recorded_spans


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """Everything the project logs, as JSON lines, while the test runs."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("mcp_ledger")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _entries(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_record_logged_in_a_bound_context_carries_its_fields_and_loses_them_after(
    json_lines: io.StringIO,
) -> None:
    log = logging.getLogger("mcp_ledger.test")
    with log_context(command_id="c1", correlation_id="k1", tenant="acme"):
        log.info("inside %s", "the block")
    log.warning("outside")
    inside, outside = _entries(json_lines)
    assert inside["message"] == "inside the block"
    assert (inside["command_id"], inside["correlation_id"], inside["tenant"]) == ("c1", "k1", "acme")
    assert inside["level"] == "INFO"
    assert inside["logger"] == "mcp_ledger.test"
    assert "command_id" not in outside


def test_a_record_logged_inside_a_span_names_its_trace_and_span(json_lines: io.StringIO) -> None:
    with recorded_spans() as exporter:
        with span("work"):
            logging.getLogger("mcp_ledger.test").info("traced")
        (finished,) = exporter.get_finished_spans()
    (entry,) = _entries(json_lines)
    assert finished.context is not None
    assert entry["trace_id"] == format(finished.context.trace_id, "032x")
    assert entry["span_id"] == format(finished.context.span_id, "016x")


def test_an_exception_is_logged_on_the_same_line(json_lines: io.StringIO) -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("mcp_ledger.test").exception("failed")
    (entry,) = _entries(json_lines)
    assert "RuntimeError: boom" in entry["exception"]


async def test_what_a_tool_logs_while_the_worker_handles_a_command_names_that_command(
    store: SqlEventStore, json_lines: io.StringIO
) -> None:
    async def chatty(call: ToolInvocation) -> ToolOutcome:
        logging.getLogger("mcp_ledger.tools.chatty").info("running")
        return await BUILTIN_RUNNERS["echo"](call)

    async def published(events: Sequence[StoredEvent]) -> None:
        pass

    handler = CommandHandler(store, builtin_catalog(), {"echo": chatty}, published)
    command = CallTool(
        tenant="acme", subject="alice", tool_name="echo", arguments={"text": "x"}, correlation_id="conv-7"
    )
    await handler.handle_payload(CommandEnvelope(command=command).model_dump_json().encode())
    (entry,) = [e for e in _entries(json_lines) if e["message"] == "running"]
    assert entry["command_id"] == command.command_id
    assert entry["correlation_id"] == "conv-7"
    assert entry["tenant"] == "acme"
    assert "alice" not in json.dumps(entry)


def test_configure_logging_refuses_an_unknown_format() -> None:
    with pytest.raises(ValueError, match="json or text"):
        configure_logging("INFO", "xml")
