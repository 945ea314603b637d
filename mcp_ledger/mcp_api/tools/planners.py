"""Planners: turning a goal into a raw plan with an LLM, then letting validation judge it.

Two sources. MCP sampling asks the client's own LLM (it runs in the API process because the
API holds the client connection): on the 2026-07-28 protocol as an input_required result the
client answers and retries with, on older protocols as a sampling/createMessage request on
the call's stream when the connection has one. An OpenAI-compatible endpoint
(LEDGER_PLANNER_URL) is the other. Either way the LLM sees the goal and the caller's visible
tools only; what it returns is parsed as data (JSON or YAML, never evaluated) and validated
like any agent-supplied plan, with a bounded number of re-asks carrying the problems found.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import httpx
import mcp_types as types
from pydantic import BaseModel

from mcp_ledger.checks.documents import DocumentError, load_json
from mcp_ledger.checks.yaml_documents import load_yaml
from mcp_ledger.domain.plans.model import MAX_PLAN_TEXT_BYTES
from mcp_ledger.domain.tools import ToolSpec

MAX_REASKS = 2
"""Re-asks after the first answer: at most 1 + MAX_REASKS answers are judged."""
SAMPLING_KEY = "ledger-plan-"
_FENCE = re.compile(r"```(?:json|yaml|yml)?\s*\n(.*?)```", re.DOTALL)

Check = Callable[[dict[str, Any]], list[str]]
"""Problems with a raw plan for this caller (empty: it is acceptable)."""


class PlannerError(Exception):
    """No valid plan could be made for the goal; the message says why."""


SYSTEM_PROMPT = (
    "You write execution plans for an MCP gateway. Answer with one JSON object only, no prose: "
    '{"goal": str, "tasks": [{"id": str, "tool_name": str, "description": str, "parameters": {...}, '
    '"dependencies": [ids], "on_error": "fail"|"continue"|"compensate", '
    '"retry": {"max_attempts": int}, "timeout": seconds}]}. '
    "Use only the tools listed. To pass one task's output to another, use a whole parameter value "
    '\'${ID.output.field}\' or {"$ref": "tasks.ID.output", "path": "/field"}. '
    "Task ids start with a letter; the graph must have no cycles."
)


def plan_prompt(goal: str, tools: list[ToolSpec], problems: list[str]) -> str:
    """The user message: goal, tools with input schemas, and what was wrong last time."""
    listing = [
        {"name": spec.name, "description": spec.description, "input_schema": spec.input_schema}
        for spec in tools
    ]
    text = f"Goal:\n{goal}\n\nTools:\n{json.dumps(listing, ensure_ascii=False)}"
    if problems:
        text += (
            "\n\nYour previous plan was refused:\n- "
            + "\n- ".join(problems)
            + "\nAnswer with a corrected plan."
        )
    return text


def parse_plan_text(text: str) -> dict[str, Any]:
    """The plan object in an LLM's answer (bare JSON, or fenced JSON/YAML).

    Raises:
        PlannerError: no JSON or YAML object in it.
    """
    if len(text) > MAX_PLAN_TEXT_BYTES:
        raise PlannerError(f"the answer is over {MAX_PLAN_TEXT_BYTES} bytes")
    fenced = _FENCE.search(text)
    body = (fenced.group(1) if fenced else text).strip()
    try:
        parsed = load_json(body, max_bytes=MAX_PLAN_TEXT_BYTES, what="the answer")
    except DocumentError:
        start, end = body.find("{"), body.rfind("}")
        try:
            if start >= 0 < end:
                parsed = load_json(body[start : end + 1], max_bytes=MAX_PLAN_TEXT_BYTES, what="the answer")
            else:
                parsed = load_yaml(body, max_bytes=MAX_PLAN_TEXT_BYTES, what="the answer")
        except DocumentError as error:
            raise PlannerError(f"the answer is not a JSON object: {error}") from None
    if not isinstance(parsed, dict):
        raise PlannerError("the answer is not a JSON object")
    return parsed


def judge(text: str, check: Check) -> tuple[dict[str, Any] | None, list[str]]:
    """(the plan, []) when the answer holds an acceptable plan, else (None, problems)."""
    try:
        raw = parse_plan_text(text)
    except PlannerError as error:
        return None, [str(error)]
    problems = check(raw)
    return (raw, []) if not problems else (None, problems)


def sampling_request(goal: str, tools: list[ToolSpec], problems: list[str]) -> types.CreateMessageRequest:
    """The sampling/createMessage request asking the client's LLM for a plan."""
    message = types.SamplingMessage(
        role="user", content=types.TextContent(type="text", text=plan_prompt(goal, tools, problems))
    )
    params = types.CreateMessageRequestParams(
        messages=[message], system_prompt=SYSTEM_PROMPT, max_tokens=4000, temperature=0.0
    )
    return types.CreateMessageRequest(params=params)


def sampled_text(result: Any) -> str:
    """The text of a sampling answer (CreateMessageResult, or its wire dict).

    Raises:
        PlannerError: the answer holds no text.
    """
    if isinstance(result, BaseModel):
        result = result.model_dump(mode="json", by_alias=True, exclude_none=True)
    content = result.get("content") if isinstance(result, dict) else None
    blocks = content if isinstance(content, list) else [content]
    texts = [b["text"] for b in blocks if isinstance(b, dict) and isinstance(b.get("text"), str)]
    if not texts:
        raise PlannerError("the client's LLM answered without text")
    return "".join(texts)


def latest_answer(input_responses: dict[str, Any] | None) -> tuple[int, Any] | None:
    """(round, answer) of the newest sampling round the client answered, None before the first."""
    rounds = []
    for key, value in (input_responses or {}).items():
        if key.startswith(SAMPLING_KEY) and key.removeprefix(SAMPLING_KEY).isdigit():
            rounds.append((int(key.removeprefix(SAMPLING_KEY)), value))
    return max(rounds, key=lambda item: item[0]) if rounds else None


def ask_again(
    goal: str, tools: list[ToolSpec], round_: int, problems: list[str]
) -> types.InputRequiredResult:
    """The input_required answer asking the client's LLM (again) for a plan."""
    return types.InputRequiredResult(
        input_requests={f"{SAMPLING_KEY}{round_}": sampling_request(goal, tools, problems)}
    )


def too_many(problems: list[str]) -> PlannerError:
    """The final error after the last re-ask."""
    return PlannerError(
        f"the planner's plan was refused {1 + MAX_REASKS} times; last problems: " + "; ".join(problems)
    )


class EndpointPlanner:
    """An OpenAI-compatible chat completions endpoint (POST {base}/chat/completions)."""

    def __init__(self, base_url: str, model: str, api_key: str = "", *, timeout: float = 60.0) -> None:
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._model = model
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._timeout = timeout

    async def plan(self, goal: str, tools: list[ToolSpec], check: Check) -> dict[str, Any]:
        """A plan that passes `check`, asking at most 1 + MAX_REASKS times.

        Raises:
            PlannerError: the endpoint failed or every answer was refused.
        """
        problems: list[str] = []
        async with httpx.AsyncClient(timeout=self._timeout, headers=self._headers) as http:
            for _ in range(1 + MAX_REASKS):
                raw, problems = judge(await self._ask(http, goal, tools, problems), check)
                if raw is not None:
                    return raw
        raise too_many(problems)

    async def _ask(
        self, http: httpx.AsyncClient, goal: str, tools: list[ToolSpec], problems: list[str]
    ) -> str:
        body = {
            "model": self._model,
            "temperature": 0,
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": plan_prompt(goal, tools, problems)},
            ],
        }
        try:
            response = await http.post(self._url, json=body)
            response.raise_for_status()
            return str(response.json()["choices"][0]["message"]["content"])
        except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as error:
            raise PlannerError(f"the planner endpoint failed: {type(error).__name__}: {error}") from None


def make_endpoint_planner(url: str, model: str, api_key: str) -> EndpointPlanner | None:
    """The endpoint planner when a URL is configured."""
    return EndpointPlanner(url, model, api_key) if url else None
