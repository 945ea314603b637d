"""The admin HTTP endpoint for erasure: POST /admin/erasures {"subject": "..."}.

Owns the HTTP side of an erasure request: the caller must hold the "admin" role, and erases
within their own tenant only. The request becomes an EraseSubject command on ledger.compliance;
the answer is the PII-free ErasureCompleted record (200), or 202 with the erasure id when it
did not complete in time (it still will: the command is on the bus). Does not erase anything
itself (consumers/erasure.py does).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from mcp_ledger.domain.compliance.erasure import EraseSubject
from mcp_ledger.mcp_api.auth.identity import IdentityResolver
from mcp_ledger.mcp_api.gateway import CommandGateway, CommandTimeoutError
from mcp_ledger.mcp_api.routes.bodies import admin_body, problem
from mcp_ledger.producers.ports import BusError

ADMIN_ROLE = "admin"


class ErasureRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject: str = Field(min_length=1, max_length=256)


def admin_routes(gateway: CommandGateway, compliance_topic: str, identities: IdentityResolver) -> list[Route]:
    """The admin routes, to mount on the API's Starlette app."""

    async def erase(request: Request) -> JSONResponse:
        identity = identities.resolve(request)
        if ADMIN_ROLE not in identity.roles:
            return problem(403, "erasure needs the admin role")
        body = await admin_body(request, ErasureRequest, '{"subject": "..."}')
        if isinstance(body, JSONResponse):
            return body
        command = EraseSubject(tenant=identity.tenant, subject=body.subject, requested_by=identity.subject)
        try:
            event = await gateway.erase(compliance_topic, command)
        except CommandTimeoutError:
            return JSONResponse({"erasure_id": command.command_id, "status": "accepted"}, status_code=202)
        except BusError:
            return problem(503, "the compliance bus is unavailable; try again")
        record = event["data"]
        assert isinstance(record, dict)
        return JSONResponse({"status": "completed", **record})

    return [Route("/admin/erasures", erase, methods=["POST"])]
