"""A real local HTTP service for registry tests: a tiny pet store under uvicorn on a free port.

It counts the requests each route gets, so tests can see retries (or their absence), records
the raw path of every request under /api/ (what a tool's path arguments became on the wire),
and serves its own OpenAPI 3.1 description with x-mcp-tool extensions.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.loopback import serving


@dataclass
class PetService:
    base_url: str = ""
    hits: Counter[str] = field(default_factory=Counter)
    pets: dict[int, dict[str, Any]] = field(default_factory=lambda: {1: {"id": 1, "name": "Rex"}})
    received: list[Any] = field(default_factory=list)
    raw_paths: list[str] = field(default_factory=list)


def openapi_document(base_url: str) -> dict[str, Any]:
    pet = {"type": "object", "properties": {"id": {"type": "integer"}, "name": {"type": "string"}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "pets", "version": "1"},
        "servers": [{"url": base_url}],
        "components": {"schemas": {"Pet": pet}},
        "paths": {
            "/pets/{petId}": {
                "parameters": [
                    {"name": "petId", "in": "path", "required": True, "schema": {"type": "integer"}}
                ],
                "get": {
                    "operationId": "getPet",
                    "summary": "Read one pet",
                    "x-mcp-tool": {"category": "pets", "pipeability": {"produces": ["pet"]}},
                    "responses": {
                        "200": {
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Pet"}}}
                        }
                    },
                },
            },
            "/pets": {
                "get": {
                    "operationId": "listPets",
                    "parameters": [{"name": "limit", "in": "query", "schema": {"type": "integer"}}],
                    "responses": {
                        "200": {
                            "content": {
                                "application/json": {
                                    "schema": {"type": "array", "items": {"$ref": "#/components/schemas/Pet"}}
                                }
                            }
                        }
                    },
                },
                "post": {
                    "operationId": "create pet!",
                    "x-mcp-tool": {"security": {"minimum_role": "operator"}},
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Pet"}}},
                    },
                    "responses": {"201": {"content": {"application/json": {"schema": pet}}}},
                },
            },
            "/flaky": {"get": {"operationId": "flakyGet", "responses": {"200": {"description": "ok"}}}},
            "/flaky-post": {
                "post": {"operationId": "flakyPost", "responses": {"200": {"description": "ok"}}}
            },
        },
    }


def _app(service: PetService) -> Starlette:
    async def get_pet(request: Request) -> Response:
        service.hits["get_pet"] += 1
        pet = service.pets.get(int(request.path_params["pet_id"]))
        return JSONResponse(pet) if pet else JSONResponse({"error": "no such pet"}, status_code=404)

    async def pets(request: Request) -> Response:
        if request.method == "POST":
            service.hits["create_pet"] += 1
            body = await request.json()
            service.pets[int(body["id"])] = body
            return JSONResponse(body, status_code=201)
        service.hits["list_pets"] += 1
        limit = int(request.query_params.get("limit", "100"))
        return JSONResponse(list(service.pets.values())[:limit])

    async def flaky(request: Request) -> Response:
        service.hits["flaky"] += 1
        if service.hits["flaky"] == 1:
            return JSONResponse({"error": "warming up"}, status_code=503)
        return JSONResponse({"ok": True, "attempt": service.hits["flaky"]})

    async def flaky_post(request: Request) -> Response:
        service.hits["flaky_post"] += 1
        return JSONResponse({"error": "unavailable"}, status_code=503)

    async def redirect(request: Request) -> Response:
        return Response(status_code=302, headers={"location": "http://169.254.169.254/latest/meta-data/"})

    async def words(request: Request) -> Response:
        service.hits["words"] += 1
        text = await request.json()
        service.received.append(text)
        return JSONResponse({"words": len(str(text).split())})

    async def api(request: Request) -> Response:
        raw_path = request.scope["raw_path"].decode()
        service.raw_paths.append(raw_path)
        return JSONResponse({"raw_path": raw_path})

    async def deep(request: Request) -> Response:
        depth = int(request.query_params.get("depth", "5000"))
        return Response("[" * depth + "]" * depth, media_type="application/json")

    async def document(request: Request) -> Response:
        return JSONResponse(openapi_document(service.base_url))

    return Starlette(
        routes=[
            Route("/pets/{pet_id:int}", get_pet),
            Route("/pets", pets, methods=["GET", "POST"]),
            Route("/flaky", flaky),
            Route("/flaky-post", flaky_post, methods=["POST"]),
            Route("/openapi.json", document),
            Route("/redirect", redirect),
            Route("/words", words, methods=["POST"]),
            Route("/api/{rest:path}", api),
            Route("/deep", deep),
        ]
    )


@asynccontextmanager
async def pet_service() -> AsyncIterator[PetService]:
    """The service on 127.0.0.1 and a free port, for the duration of the block."""
    service = PetService()
    async with serving(_app(service)) as base:
        service.base_url = base
        yield service


def count_words_tool(base_url: str, name: str = "count_words") -> dict[str, Any]:
    """A registered HTTP tool whose `document` argument takes a pointer (the worker resolves
    it); the pet service's /words counts the document's words."""
    return {
        "name": name,
        "description": "Count the words of a document.",
        "input_schema": {
            "type": "object",
            "properties": {"document": {"type": "string", "maxLength": 4096}},
            "required": ["document"],
        },
        "binding": {
            "kind": "http",
            "method": "POST",
            "base_url": base_url,
            "path": "/words",
            "body_argument": "document",
        },
        "pipeability": {
            "accepts": ["resource_link"],
            "produces": ["count"],
            "pointer_arguments": ["document"],
        },
    }
