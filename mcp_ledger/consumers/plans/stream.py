"""Reading and writing a plan's stream: find the caller's plan, replay it into a PlanState,
append with metadata.

Shared by the plan command handler and the executor so both record plan events the same
way (who, which plan, correlation) and rebuild the same state. A plan id names a plan only
among its owner's plans (streams.plan_stream); plans accepted before that live on the
tenant-wide legacy stream and are found there for their owner only.
"""

from __future__ import annotations

from collections.abc import Sequence

from mcp_ledger.consumers.mapping import EventMapper
from mcp_ledger.domain.events import DomainEvent, to_record
from mcp_ledger.domain.plans.state import PlanState
from mcp_ledger.domain.streams import legacy_plan_stream, parse_plan_stream, plan_stream, plan_task_command_id
from mcp_ledger.eventstore.ports import AppendResult, EventStore, NewEvent

PLAIN = EventMapper()
"""No sealing: for stores whose deployment has no key store (tests, tools)."""


async def load_plan(store: EventStore, stream_id: str, mapper: EventMapper = PLAIN) -> PlanState:
    """The plan's state from its stream (an empty state when it does not exist)."""
    stored = await store.read_stream(stream_id)
    return PlanState.replay(stream_id, [await mapper.to_domain(event) for event in stored])


async def owned_plan(
    store: EventStore, tenant: str, subject: str, plan_id: str, mapper: EventMapper = PLAIN
) -> PlanState:
    """The subject's plan of that id (an empty state on the subject's own stream when there
    is none). Another subject's plan is never returned, whatever its id."""
    state = await load_plan(store, plan_stream(tenant, subject, plan_id), mapper)
    if state.exists:
        return state
    legacy = legacy_plan_stream(tenant, plan_id)
    first = (await store.read_stream(legacy))[:1]
    # The owner is read from the clear metadata: another subject's plan is not even opened.
    if not first or first[0].metadata.get("subject") != subject:
        return state
    found = await load_plan(store, legacy, mapper)
    owned = found.accepted is not None and found.accepted.subject == subject
    return found if owned else state


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


def task_command_id(state: PlanState, task_id: str, kind: str) -> str:
    """The command id of a task's attempt (`kind`: its number, or "compensate")."""
    accepted = state.accepted
    assert accepted is not None
    name = parse_plan_stream(state.stream_id)
    if name is not None and name.owner_tag is None:
        # A plan accepted before ids were scoped keeps the ids its recorded attempts have, so
        # an attempt in flight at the upgrade is not run twice. The idempotency key is scoped
        # by tenant and subject, so these content-derived ids match nobody else's.
        return f"plan-{accepted.plan_hash[7:23]}-{accepted.plan_id}-{task_id}-{kind}"
    return plan_task_command_id(accepted.command_id, list(state.tasks).index(task_id), kind)
