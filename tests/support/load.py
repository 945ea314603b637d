"""A steady load of tool calls and plans against a gateway, tolerant of outages: every
answer (or failure) is counted, nothing is retried behind the test's back, and it stops when
told. What happened to each call is checked afterwards against the store (history.py)."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import httpx2
from mcp.shared.exceptions import MCPError

from tests.support.clients import mcp_client

CALL_SECONDS = 30.0
"""A bound on one call from the agent's side (the API's own timeout is shorter)."""


@dataclass
class LoadReport:
    outcomes: Counter[str] = field(default_factory=Counter)
    plans: list[str] = field(default_factory=list)
    """Plans whose create_plan was answered as accepted and running."""
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def ok(self) -> int:
        return self.outcomes["ok"]

    def note_failure(self, error: BaseException) -> None:
        kind = (
            "transport_error"
            if isinstance(error, httpx.HTTPError | httpx2.HTTPError | OSError | TimeoutError)
            else "rpc_error"
        )
        self.outcomes[kind] += 1
        self.errors[f"{type(error).__name__}: {str(error)[:80]}"] += 1


def _plan(plan_id: str) -> dict[str, object]:
    return {
        "plan_id": plan_id,
        "tasks": [
            {"id": "a", "tool_name": "echo", "parameters": {"text": plan_id}},
            {"id": "b", "tool_name": "sleep", "parameters": {"ms": 20}, "dependencies": ["a"]},
            {
                "id": "c",
                "tool_name": "echo",
                "parameters": {"text": "${a.output.text}"},
                "dependencies": ["b"],
            },
        ],
    }


async def _one_call(
    url: str, session: str | None, name: str, arguments: dict[str, object]
) -> dict[str, object]:
    """One tool call in a fresh stateless client; the structured result, or raises."""
    async with asyncio.timeout(CALL_SECONDS), mcp_client(url, session=session, mode="2026-07-28") as client:
        result = await client.call_tool(name, arguments)
    if result.is_error:
        raise ToolResultError(str(result.content)[:200])
    assert isinstance(result.structured_content, dict)
    return result.structured_content


OUTAGE = (MCPError, httpx.HTTPError, httpx2.HTTPError, TimeoutError, OSError)
"""What an outage looks like to an agent; the SDK client's transport is httpx2, not httpx."""


class ToolResultError(Exception):
    """The call was answered with a tool error (e.g. no outcome within the API's timeout)."""


async def _agent(urls: list[str], index: int, tag: str, report: LoadReport, stop: asyncio.Event) -> None:
    session: str | None = None
    for step in itertools.count():
        if stop.is_set():
            return
        url = urls[step % len(urls)]
        try:
            if session is None:
                session = str((await _one_call(url, None, "session_open", {}))["session_id"])
            elif index == 0 and step % 4 == 1:
                plan_id = f"{tag}-{step}"
                await _one_call(url, session, "create_plan", {"plan": _plan(plan_id), "execute": True})
                report.plans.append(plan_id)
            else:
                await _one_call(url, session, "note_set", {"key": f"k{step % 5}", "value": step})
            report.outcomes["ok"] += 1
        except ToolResultError as error:
            report.outcomes["tool_error"] += 1
            report.errors[f"tool error: {str(error)[:80]}"] += 1
        except Exception as error:
            if not _outage(error):
                raise
            report.note_failure(error)
            await asyncio.sleep(0.2)  # an outage: do not spin


def _outage(error: Exception) -> bool:
    """Whether an error is what an agent sees of an outage (the SDK client may wrap those in
    exception groups); anything else is a bug of the load itself and ends the test."""
    if isinstance(error, BaseExceptionGroup):
        _, rest = error.split(OUTAGE)
        return rest is None
    return isinstance(error, OUTAGE)


async def run_load(
    urls: list[str], tag: str, report: LoadReport, stop: asyncio.Event, agents: int = 3
) -> None:
    """Agents calling tools (and agent 0 creating plans) into `report` until `stop` is set."""
    await asyncio.gather(*(_agent(urls, index, f"{tag}{index}", report, stop) for index in range(agents)))


async def wait_for(condition_met: Callable[[], bool], what: str, seconds: float) -> None:
    """Poll until `condition_met()` is true (bounded)."""
    try:
        async with asyncio.timeout(seconds):
            while not condition_met():
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"{what}: not within {seconds:.0f}s") from None
