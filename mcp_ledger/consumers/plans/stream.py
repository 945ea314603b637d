"""Reading and writing a plan's stream: replay into a PlanState, append with metadata.

Shared by the plan command handler and the executor so both record plan events the same
way (who, which plan, correlation) and rebuild the same state.
"""

from __future__ import annotations

from collections.abc import Sequence

from mcp_ledger.consumers.mapping import EventMapper
from mcp_ledger.domain.events import DomainEvent, to_record
from mcp_ledger.domain.plans.state import PlanState
from mcp_ledger.eventstore.ports import AppendResult, EventStore, NewEvent

PLAIN = EventMapper()
"""No sealing: for stores whose deployment has no key store (tests, tools)."""


async def load_plan(store: EventStore, stream_id: str, mapper: EventMapper = PLAIN) -> PlanState:
    """The plan's state from its stream (an empty state when it does not exist)."""
    stored = await store.read_stream(stream_id)
    return PlanState.replay(stream_id, [await mapper.to_domain(event) for event in stored])


async def catch_up(store: EventStore, state: PlanState, mapper: EventMapper = PLAIN) -> int:
    """Apply events appended by others since the state was built; returns how many."""
    stored = await store.read_stream(state.stream_id, after_version=state.version)
    for event in stored:
        state.apply(await mapper.to_domain(event))
    return len(stored)


def plan_records(
    events: Sequence[DomainEvent], *, tenant: str, subject: str, command_id: str, correlation_id: str = ""
) -> list[NewEvent]:
    """Store records for plan events, each saying who caused it and which command started it."""
    metadata = {
        "command_id": command_id,
        "correlation_id": correlation_id or command_id,
        "tenant": tenant,
        "subject": subject,
    }
    records = []
    for event in events:
        event_type, version, data = to_record(event)
        records.append(NewEvent(event_type=event_type, data=data, schema_version=version, metadata=metadata))
    return records


async def append_plan_events(
    store: EventStore,
    state: PlanState,
    expected: int,
    events: Sequence[DomainEvent],
    mapper: EventMapper = PLAIN,
) -> AppendResult:
    """Append the executor's events to the plan stream at `expected`.

    Raises:
        ConcurrencyError: someone else appended first (a cancellation, another executor).
    """
    assert state.accepted is not None
    accepted = state.accepted
    records = plan_records(
        events, tenant=accepted.tenant, subject=accepted.subject, command_id=accepted.command_id
    )
    return await store.append(state.stream_id, expected, await mapper.sealed(records, state.stream_id))
