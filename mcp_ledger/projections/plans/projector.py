"""The plan projector: folds plan-stream events into plan views, live or by replay, with the
mechanics every projector shares (projector.StreamProjector).

A view is keyed by its plan's owner and id (streams.plan_view_id). The owner is named by the
stream and by every event's metadata; an event whose metadata names another owner than its
stream is not folded. A legacy stream (before plan ids were scoped) names no owner, so its
events' metadata does.
"""

from __future__ import annotations

import logging

from mcp_ledger.domain.events import DomainEvent
from mcp_ledger.domain.plans.events import PlanAccepted
from mcp_ledger.domain.streams import parse_plan_stream, plan_view_id, subject_tag
from mcp_ledger.eventstore.ports import StoredEvent
from mcp_ledger.projections.plans.view import PlanView, fold_plan
from mcp_ledger.projections.projector import StreamProjector

log = logging.getLogger(__name__)


class PlanProjector(StreamProjector[PlanView]):
    """Applies stored plan events to plan views."""

    opening_event = PlanAccepted

    def _locate(self, stored: StoredEvent) -> tuple[str, str] | None:
        name = parse_plan_stream(stored.stream_id)
        owner = stored.metadata.get("subject")
        if name is None or not isinstance(owner, str):
            return None
        if name.owner_tag is not None and name.owner_tag != subject_tag(owner):
            log.warning(
                "skipping event %d: its metadata names another owner than its stream", stored.position
            )
            return None
        return name.tenant, plan_view_id(owner, name.plan_id)

    def _fold(self, view: PlanView | None, event: DomainEvent, position: int) -> PlanView | None:
        return fold_plan(view, event, position)
