"""The admin HTTP endpoint for CCPA opt-outs: POST /admin/opt-outs {"subject": "...", "opt_out": true}.

Owns the HTTP side: the caller must hold the "admin" role and acts within their own tenant.
The request becomes a call of the admin-only `privacy_set_opt_out` tool, so the worker
records it like any call (who asked, when, the outcome) in the subject's privacy stream.
Does not record anything itself (consumers/privacy.py does).
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from mcp_ledger.domain.commands import CallTool
from mcp_ledger.domain.compliance.privacy import ADMIN_OPT_OUT_TOOL
from mcp_ledger.mcp_api.auth.identity import IdentityResolver
from mcp_ledger.mcp_api.gateway import CommandGateway, CommandTimeoutError
from mcp_ledger.mcp_api.rate_limits import RateGuard
from mcp_ledger.mcp_api.routes.bodies import admin_body, problem
from mcp_ledger.producers.ports import BusError

ADMIN_ROLE = "admin"


class OptOutRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject: str = Field(min_length=1, max_length=256)
    opt_out: bool = True


def opt_out_routes(
    gateway: CommandGateway, identities: IdentityResolver, rate_guard: RateGuard | None = None
) -> list[Route]:
    """The opt-out route, to mount on the API's Starlette app; each recording is charged to
    the admin's rate limit like the tool call it is."""

    async def record(request: Request) -> JSONResponse:
        identity = identities.resolve(request)
        if ADMIN_ROLE not in identity.roles:
            return problem(403, "recording an opt-out for a subject needs the admin role")
        body = await admin_body(request, OptOutRequest, '{"subject": "...", "opt_out": true}')
        if isinstance(body, JSONResponse):
            return body
        refusal = None if rate_guard is None else await rate_guard.refusal(identity)
        if refusal is not None:
            headers = {"retry-after": str(math.ceil(refusal.retry_after))}
            return JSONResponse(
                {"error": refusal.message, **refusal.data()}, status_code=429, headers=headers
            )
        command = CallTool(
            tenant=identity.tenant,
            subject=identity.subject,
            roles=identity.roles,
            tool_name=ADMIN_OPT_OUT_TOOL,
            arguments=body.model_dump(),
        )
        try:
            event = await gateway.call(command)
        except CommandTimeoutError:
            return JSONResponse({"command_id": command.command_id, "status": "accepted"}, status_code=202)
        except BusError:
            return problem(503, "the command bus is unavailable; try again")
        if event.get("event_type") != "ToolSucceeded":
            return problem(409, f"not recorded: {event.get('event_type')}")
        data = event["data"]
        assert isinstance(data, dict)
        return JSONResponse(data.get("structured") or {})

    return [Route("/admin/opt-outs", record, methods=["POST"])]
