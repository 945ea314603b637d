"""The statements SqlEventStore runs on every append, built once: building them per call cost
more than their round trips. Owns their shape (what is read together, how a command's events
are found); does not execute anything (sql.py does).
"""

from __future__ import annotations

from sqlalchemy import and_, bindparam, exists, func, insert, select

from mcp_ledger.eventstore.ports import CommandKey
from mcp_ledger.eventstore.tables import EVENT_COLUMNS, commands, events, outbox

# The idempotency record is keyed by who issued the command: tenant, subject and id.
IS_COMMAND = and_(
    commands.c.tenant == bindparam("tenant"),
    commands.c.subject == bindparam("subject"),
    commands.c.command_id == bindparam("command_id"),
)
# The stream's version and the command's record are read together, in one trip.
CHECK = select(
    select(func.coalesce(func.max(events.c.version), 0))
    .where(events.c.stream_id == bindparam("stream_id"))
    .scalar_subquery(),
    exists().where(IS_COMMAND),
)
# A command's events are the rows its append wrote: its stream's, between its positions
# (appends are serialised, so no other append's rows fall between them). Not a join on
# events.command_id, which holds the bare id and would match another tenant's command.
# The join is on the position range alone, the primary key: with the stream in the join too,
# SQLite walks the stream's index, every event of a long session, for every command. The
# stream is checked on each row instead (`command_stream`, see SqlEventStore).
COMMAND_EVENTS = (
    select(*EVENT_COLUMNS, commands.c.stream_id.label("command_stream"))
    .select_from(
        commands.outerjoin(
            events, events.c.position.between(commands.c.first_position, commands.c.last_position)
        )
    )
    .where(IS_COMMAND)
    .order_by(events.c.position)
)
# The audit chain's tip, read under the append lock so appends chain in global order.
TIP = select(events.c.chain_hash).order_by(events.c.position.desc()).limit(1)
# CHECK and TIP in one trip: an append reads the tip whenever it writes, and a round trip
# (under the global append lock, on PostgreSQL) costs more than the index probe.
CHECK_AND_TIP = select(*CHECK.selected_columns, TIP.scalar_subquery())
# RETURNING order is unspecified, so rows are matched by version. SQLite assigns rowids in
# VALUES order; PostgreSQL writes an append in one statement of its own (postgres_append.py).
INSERT_EVENTS = insert(events).returning(events.c.version, events.c.position)
INSERT_COMMAND = insert(commands)
INSERT_OUTBOX = insert(outbox).from_select(
    ["position"],
    select(events.c.position).where(
        events.c.stream_id == bindparam("stream_id"), events.c.version > bindparam("after")
    ),
)


def key_params(command: CommandKey | None) -> dict[str, str | None]:
    """Bind values of the command-key columns (all null when there is no command: no match)."""
    if command is None:
        return {"tenant": None, "subject": None, "command_id": None}
    return {"tenant": command.tenant, "subject": command.subject, "command_id": command.command_id}
