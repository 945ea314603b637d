"""JSON request bodies of the plain-HTTP routes (/v1/tools, /admin/*): read and parsed bounded.

The size limit applies while the body streams in (a client cannot make the server buffer
more than the limit), then the JSON is parsed within the caller-data bounds
(checks/documents.py: nesting, NaN). Either failure is a BodyError carrying the HTTP status
to answer (413 or 400) and a sentence saying what is wrong; never a 500.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse

from mcp_ledger.checks.documents import DocumentError, load_json

MAX_ADMIN_BODY_BYTES = 64 * 1024
"""Admin requests name a subject and a flag: a few hundred bytes at most."""


class BodyError(ValueError):
    """The body is refused; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The whole body, refused as soon as it grows past `max_bytes`.

    Raises:
        BodyError: 413, too large.
    """
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise BodyError(413, f"the request is larger than {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def json_body(request: Request, max_bytes: int) -> Any:
    """The body's JSON value.

    Raises:
        BodyError: 413 too large, 400 not JSON or nested too deeply.
    """
    body = await read_body(request, max_bytes)
    try:
        return load_json(body, max_bytes=max_bytes)
    except DocumentError as error:
        raise BodyError(400, str(error)) from None


Model = TypeVar("Model", bound=BaseModel)


def problem(status: int, detail: str) -> JSONResponse:
    """A refusal of a plain-HTTP route: the status and a sentence saying what is wrong."""
    return JSONResponse({"error": detail}, status_code=status)


async def admin_body(request: Request, model: type[Model], expected: str) -> Model | JSONResponse:
    """An admin route's body as `model`, or the refusal to answer (413 or 400, naming the
    `expected` shape)."""
    try:
        return model.model_validate(await json_body(request, MAX_ADMIN_BODY_BYTES))
    except BodyError as error:
        return problem(error.status, f"expected {expected}: {error}")
    except ValidationError as error:
        return problem(400, f"expected {expected}: {error}")
