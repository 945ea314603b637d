"""A local OpenAI-compatible chat completions endpoint for the planner tests: it answers
POST /v1/chat/completions with canned contents in turn and keeps every request it got."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.loopback import serving


class ChatServer:
    """Answers POST /v1/chat/completions with the next canned content; keeps the requests."""

    def __init__(self, answers: list[str]) -> None:
        self.answers = answers
        self.requests: list[dict[str, Any]] = []

    async def complete(self, request: Request) -> JSONResponse:
        body = await request.json()
        self.requests.append({"body": body, "auth": request.headers.get("authorization")})
        content = self.answers.pop(0)
        return JSONResponse({"choices": [{"message": {"role": "assistant", "content": content}}]})


@asynccontextmanager
async def chat_server() -> AsyncIterator[tuple[ChatServer, str]]:
    """A ChatServer on loopback and its base URL (`…/v1`, as LEDGER_PLANNER_URL takes it)."""
    server = ChatServer([])
    app = Starlette(routes=[Route("/v1/chat/completions", server.complete, methods=["POST"])])
    async with serving(app) as base:
        yield server, f"{base}/v1"
