"""The plan projector: folds plan-stream events into plan views, live or by replay, with the
mechanics every projector shares (projector.StreamProjector)."""

from __future__ import annotations

from mcp_ledger.domain.events import DomainEvent
from mcp_ledger.domain.plans.events import PlanAccepted
from mcp_ledger.domain.streams import parse_plan_stream
from mcp_ledger.projections.plans.view import PlanView, fold_plan
from mcp_ledger.projections.projector import StreamProjector


class PlanProjector(StreamProjector[PlanView]):
    """Applies stored plan events to plan views."""

    opening_event = PlanAccepted

    def _locate(self, stream_id: str) -> tuple[str, str] | None:
        return parse_plan_stream(stream_id)

    def _fold(self, view: PlanView | None, event: DomainEvent, position: int) -> PlanView | None:
        return fold_plan(view, event, position)
