"""The API's rate-limit check: before an execution starts, take it from the caller's tenant
and subject buckets (limits/admission.py), or refuse it with a JSON-RPC error saying when to
retry.

Charged here: every MCP tools/call (plan tools included; run_pipeline by its stages), every
MCPToolService call and registration (HTTP, gRPC, each pipeline stage), every new MCP
session (a 2025-11-25 `initialize` records one) and every admin opt-out. The worker charges
each plan task attempt with the same RateAdmission (wiring/plans.py). Closing a session is
not charged: it can happen once per charged opening, and refusing it would keep sessions
alive.
"""

from __future__ import annotations

from mcp.shared.exceptions import MCPError

from mcp_ledger.limits.admission import RateAdmission, Refusal
from mcp_ledger.mcp_api.auth.identity import Identity

RATE_LIMITED = -32029
"""JSON-RPC error code of a refused call: implementation-defined server error range, 429-like."""


def rate_limited_error(refusal: Refusal, **context: object) -> MCPError:
    """The JSON-RPC error for a refusal: message and data both say when to retry; `context`
    adds what else the caller should know (e.g. which pipeline stage was refused)."""
    return MCPError(RATE_LIMITED, refusal.message, {**refusal.data(), **context})


class RateGuard:
    """Checks one execution of an identity against the policy."""

    def __init__(self, admission: RateAdmission) -> None:
        self._admission = admission

    async def refusal(self, identity: Identity) -> Refusal | None:
        """Take one execution for this caller; None when it may go ahead."""
        return await self._admission.take(identity.tenant, identity.subject)

    async def admit(self, identity: Identity) -> None:
        """Take one execution for this caller.

        Raises:
            MCPError: RATE_LIMITED, with data {retry_after_seconds, scope, limit}.
        """
        refusal = await self.refusal(identity)
        if refusal is not None:
            raise rate_limited_error(refusal)
