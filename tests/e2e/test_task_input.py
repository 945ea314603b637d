"""A task whose upstream tool asks for input (embedded gateway fronting the task-unaware
tests/support/tasks_upstream.py, auth on, 2026-07-28 wire): the task is parked as
`input_required` with the requests recorded (sealed) on its stream, tasks/update by its owner
resumes it, a partial answer keeps it waiting for the rest, nobody else can answer or see it,
the bounded wait fails it clearly."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mcp_ledger.wiring.upstreams import front_upstreams, with_upstream_hosts
from tests.e2e.federation.steps import register
from tests.e2e.test_mcp_tasks import Caller as TasksCaller
from tests.e2e.test_mcp_tasks import _events
from tests.support import tasks_upstream
from tests.support.embedded import RunningGateway, embedded_settings, gateway
from tests.support.files import files_containing
from tests.support.loopback import serving
from tests.support.tokens import good_token
from tests.support.upstream import RunningUpstream, upstream_server

DONE = {"completed", "failed", "cancelled"}


class Caller(TasksCaller):
    """A 2026-07-28 caller negotiating tasks that may also declare elicitation."""

    def __init__(self, gw: RunningGateway, subject: str, *, elicitation: bool = False) -> None:
        super().__init__(gw, subject)
        if elicitation:
            self._capabilities = {**self._capabilities, "elicitation": {}}


@contextlib.asynccontextmanager
async def fixture_upstream() -> AsyncIterator[str]:
    """tests/support/tasks_upstream.py served in this process on a free port."""
    async with serving(tasks_upstream.server.streamable_http_app()) as base:
        yield f"{base}/mcp"


@contextlib.asynccontextmanager
async def fronting(tmp_path: Path, **update: Any) -> AsyncIterator[RunningGateway]:
    async with fixture_upstream() as url:
        settings = embedded_settings(tmp_path, no_auth=False).model_copy(
            update={
                "upstreams": [f"fixture={url}"],
                "upstream_task_support": {"fixture": dict(tasks_upstream.TASK_SUPPORT)},
                "task_cancel_poll_ms": 50,
                "local_tenant": "acme",
                **update,
            }
        )
        settings = with_upstream_hosts(settings)
        async with gateway(settings) as running:
            lines = await front_upstreams(settings, running.runtime, attempts=1)
            assert lines, "the fixture upstream was not fronted"
            assert "NOT" not in lines[0], lines
            yield running


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[RunningGateway]:
    async with fronting(tmp_path) as running:
        yield running


async def start(caller: Caller, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    body = (await caller.post("tools/call", {"name": tool, "arguments": arguments}, tool)).json()
    assert "result" in body, body
    assert body["result"]["resultType"] == "task", body
    result: dict[str, Any] = body["result"]
    return result


async def get(caller: Caller, task_id: str) -> dict[str, Any]:
    result: dict[str, Any] = (await caller.task("tasks/get", task_id))["result"]
    return result


async def parked(caller: Caller, task_id: str, keys: int = 1) -> dict[str, Any]:
    """The task once it waits for at least `keys` inputs (or has ended)."""
    async with asyncio.timeout(15):
        while True:
            task = await get(caller, task_id)
            if task["status"] in DONE or len(task.get("inputRequests") or {}) >= keys:
                return task
            await asyncio.sleep(0.05)


async def update(caller: Caller, task_id: str, responses: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = (
        await caller.post("tasks/update", {"taskId": task_id, "inputResponses": responses}, task_id)
    ).json()
    return body


CONFIRM = {"action": "accept", "content": {"confirm": True}}


async def test_an_upstream_elicitation_parks_the_task_and_tasks_update_resumes_it(
    gw: RunningGateway,
) -> None:
    alice = Caller(gw, "alice")
    created = await start(alice, "confirm_delete", {"path": "/tmp/secret-plans.txt"})
    task = await parked(alice, created["taskId"])
    assert task["status"] == "input_required", task.get("error")
    [(key, request)] = task["inputRequests"].items()
    assert request["method"] == "elicitation/create"
    assert "secret-plans" in request["params"]["message"]
    assert len(key) >= 24  # minted by the worker, not the upstream's key
    ack = await update(alice, created["taskId"], {key: CONFIRM})
    assert set(ack["result"]) - {"_meta"} == {"resultType"}
    assert ack["result"]["resultType"] == "complete"
    done = await alice.settled(created["taskId"])
    assert done["status"] == "completed"
    assert done["result"]["content"][0]["text"] == "deleted /tmp/secret-plans.txt"
    kinds = [kind for kind, _ in await _events(gw, created["taskId"])]
    assert kinds == ["McpTaskCreated", "McpTaskInputRequired", "McpTaskInputAnswered", "McpTaskCompleted"]
    stored = json.dumps(await _events(gw, created["taskId"]))
    assert "secret-plans" not in stored  # the requests are sealed


async def test_a_partial_answer_keeps_the_task_waiting_for_the_rest(gw: RunningGateway) -> None:
    alice = Caller(gw, "alice")
    created = await start(alice, "multi_input", {})
    task = await parked(alice, created["taskId"], keys=2)
    first, second = task["inputRequests"]
    assert (await update(alice, created["taskId"], {first: CONFIRM}))["result"]["resultType"] == "complete"
    waiting = await get(alice, created["taskId"])
    assert waiting["status"] == "input_required"
    assert list(waiting["inputRequests"]) == [second]
    await update(alice, created["taskId"], {first: CONFIRM})  # answered already: ignored
    await update(alice, created["taskId"], {second: {"action": "decline"}})
    done = await alice.settled(created["taskId"])
    assert done["status"] == "completed"
    assert done["result"]["content"][0]["text"] == "answers: accept, decline"


async def test_another_subject_can_neither_see_nor_answer_the_parked_task(gw: RunningGateway) -> None:
    alice, mallory = Caller(gw, "alice"), Caller(gw, "mallory")
    created = await start(alice, "confirm_delete", {"path": "/tmp/a"})
    task = await parked(alice, created["taskId"])
    [key] = task["inputRequests"]
    for method in ("tasks/get", "tasks/cancel"):
        refused = await mallory.task(method, created["taskId"])
        assert refused["error"]["code"] == -32602
    refused = await update(mallory, created["taskId"], {key: CONFIRM})
    assert refused["error"] == {
        "code": -32602,
        "message": "unknown task",
        "data": {"taskId": created["taskId"]},
    }
    await asyncio.sleep(0.3)
    still = await get(alice, created["taskId"])
    assert (still["status"], list(still["inputRequests"])) == ("input_required", [key])
    await update(alice, created["taskId"], {key: {"action": "decline"}})
    done = await alice.settled(created["taskId"])
    assert done["result"]["content"][0]["text"] == "kept /tmp/a"


async def test_an_unknown_key_is_acked_and_answers_nothing(gw: RunningGateway) -> None:
    alice = Caller(gw, "alice")
    created = await start(alice, "confirm_delete", {})
    await parked(alice, created["taskId"])
    ack = await update(alice, created["taskId"], {"unknown-key": {"ignored": True}})
    assert set(ack["result"]) - {"_meta"} == {"resultType"}
    assert ack["result"]["resultType"] == "complete"
    assert (await get(alice, created["taskId"]))["status"] == "input_required"
    await alice.task("tasks/cancel", created["taskId"])
    assert (await alice.settled(created["taskId"]))["status"] == "cancelled"


async def test_the_wait_for_input_is_bounded_and_its_end_is_recorded(tmp_path: Path) -> None:
    async with fronting(tmp_path, task_input_wait_s=1.0) as gw:
        alice = Caller(gw, "alice")
        created = await start(alice, "confirm_delete", {})
        await parked(alice, created["taskId"])
        done = await alice.settled(created["taskId"])
        assert done["status"] == "failed"
        assert done["error"]["code"] == -32001
        assert "within 1s" in done["error"]["message"]
        kinds = [kind for kind, _ in await _events(gw, created["taskId"])]
        assert kinds == ["McpTaskCreated", "McpTaskInputRequired", "McpTaskFailed"]


async def test_erasure_leaves_nothing_of_a_parked_task_s_requests_readable(
    gw: RunningGateway, tmp_path: Path
) -> None:
    marker = f"marker-{uuid.uuid4().hex}"
    alice = Caller(gw, "alice")
    created = await start(alice, "confirm_delete", {"path": f"/tmp/{marker}"})
    assert marker in json.dumps(await parked(alice, created["taskId"]))
    assert files_containing(tmp_path, marker) == []  # sealed from the start
    async with httpx.AsyncClient(timeout=30) as http:
        answer = await http.post(
            f"{gw.url.removesuffix('/mcp')}/admin/erasures",
            json={"subject": "alice"},
            headers={"authorization": f"Bearer {good_token(gw.runtime.settings, sub='alice')}"},
        )
    assert answer.json()["status"] == "completed", answer.text
    assert marker not in json.dumps(await alice.task("tasks/get", created["taskId"]))
    assert files_containing(tmp_path, marker) == []


@pytest.fixture
async def legacy_upstream(tmp_path: Path) -> AsyncIterator[tuple[RunningGateway, RunningUpstream]]:
    settings = embedded_settings(tmp_path, no_auth=False).model_copy(
        update={"registry_allowed_hosts": "127.0.0.1"}
    )
    async with upstream_server(legacy=True) as upstream, gateway(settings) as running:
        registered = await register(running, upstream, task_support={"ask_user": "optional"})
        assert not registered.is_error, registered
        yield running, upstream


async def test_a_2025_11_25_upstream_s_elicitation_request_parks_a_2026_07_28_agent_s_task(
    legacy_upstream: tuple[RunningGateway, RunningUpstream],
) -> None:
    """The upstream speaks 2025-11-25 only, so it asks by a request to its client (the
    worker), which parks it on the task like a round."""
    gw, upstream = legacy_upstream
    alice = Caller(gw, "alice", elicitation=True)
    created = await start(alice, "fx_ask_user", {"question": "Launch?"})
    task = await parked(alice, created["taskId"])
    assert "inputRequests" in task, task.get("error")
    [(key, request)] = task["inputRequests"].items()
    assert request == {
        "method": "elicitation/create",
        "params": request["params"] | {"message": "Launch?"},
    }
    await update(alice, created["taskId"], {key: {"action": "accept", "content": {"answer": "yes"}}})
    done = await alice.settled(created["taskId"])
    assert done["status"] == "completed", done
    assert done["result"]["content"][0]["text"] == "user said: yes"
    assert upstream.state.calls["ask_user"] == 1
