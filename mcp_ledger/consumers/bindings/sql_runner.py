"""Running SQL-bound tools: parameterised SQLAlchemy Core statements on a session's source.

Statements are built from the binding's identifiers (plain names, checked at registration)
with lightweight table/column constructs; every value from the agent is a bound parameter,
and unknown columns in arguments are refused, never interpolated. Engines are pooled per
DSN and disposed by `close()`.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from mcp_ledger.consumers.tools import ToolExecutionError, ToolOutcome, structured_outcome
from mcp_ledger.domain.registry.bindings import SqlBinding


def jsonable(value: Any) -> Any:
    """A JSON-ready form of a column value."""
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | memoryview):
        return base64.b64encode(bytes(value)).decode()
    return value


_COUNTS = {"insert": "inserted", "update": "updated", "delete": "deleted"}


def _table(name: str, columns: tuple[str, ...], schema: str | None) -> sa.TableClause:
    return sa.table(name, *(sa.column(c) for c in columns), schema=schema)


def _values(binding: SqlBinding, raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict) or not raw:
        raise ToolExecutionError("invalid_arguments", "values must be a non-empty object")
    unknown = sorted(set(raw) - set(binding.columns))
    if unknown:
        raise ToolExecutionError("invalid_arguments", f"unknown columns: {', '.join(unknown)}")
    return dict(raw)


def _key_clause(table: sa.TableClause, columns: tuple[str, ...], arguments: dict[str, Any]) -> Any:
    missing = [c for c in columns if c not in arguments]
    if missing or not columns:
        raise ToolExecutionError("invalid_arguments", f"missing key columns: {', '.join(missing)}")
    return sa.and_(*(table.c[c] == sa.bindparam(f"k_{c}", arguments[c]) for c in columns))


def build_statement(binding: SqlBinding, arguments: dict[str, Any]) -> sa.Executable:
    """The parameterised statement for a call.

    Raises:
        ToolExecutionError: arguments name unknown columns or miss key columns.
    """
    table = _table(binding.table, binding.columns, binding.schema_name)
    operation = binding.operation
    if operation == "read":
        return sa.select(table).where(_key_clause(table, binding.key_columns, arguments)).limit(2)
    if operation == "query":
        where = _values(binding, arguments["where"]) if arguments.get("where") else {}
        limit = min(int(arguments.get("limit", binding.max_rows)), binding.max_rows)
        statement = sa.select(table).where(*(table.c[c] == v for c, v in where.items())).limit(limit)
        return statement.order_by(*(table.c[c] for c in binding.key_columns))
    if operation == "insert":
        return sa.insert(table).values(_values(binding, arguments.get("values")))
    if operation == "update":
        clause = _key_clause(table, binding.key_columns, arguments)
        return sa.update(table).where(clause).values(_values(binding, arguments.get("values")))
    if operation == "delete":
        return sa.delete(table).where(_key_clause(table, binding.key_columns, arguments))
    assert binding.related_table is not None
    child = _table(binding.related_table, binding.related_columns, binding.schema_name)
    keys = dict(
        zip(binding.related_foreign_key, (arguments.get(c) for c in binding.key_columns), strict=True)
    )
    return (
        sa.select(child).where(_key_clause(child, binding.related_foreign_key, keys)).limit(binding.max_rows)
    )


def _rows(result: sa.CursorResult[Any]) -> list[dict[str, Any]]:
    return [{key: jsonable(value) for key, value in row._mapping.items()} for row in result]


class SqlToolRunner:
    """Runs SQL bindings against their data sources."""

    def __init__(self) -> None:
        self._engines: dict[str, AsyncEngine] = {}

    def _engine(self, dsn: str) -> AsyncEngine:
        if dsn not in self._engines:
            self._engines[dsn] = create_async_engine(dsn, pool_pre_ping=True)
        return self._engines[dsn]

    async def run(self, binding: SqlBinding, dsn: str, arguments: dict[str, Any]) -> ToolOutcome:
        """Run the binding's statement in one transaction.

        Raises:
            ToolExecutionError: bad arguments or a database error (message without the DSN).
        """
        statement = build_statement(binding, arguments)
        try:
            async with self._engine(dsn).begin() as connection:
                result = await connection.execute(statement)
                if binding.operation in {"read", "query", "related"}:
                    rows = _rows(result)
                    if binding.operation == "read":
                        return structured_outcome({"found": bool(rows), "row": rows[0] if rows else None})
                    return structured_outcome({"rows": rows})
                return structured_outcome({_COUNTS[binding.operation]: result.rowcount})
        except SQLAlchemyError as error:
            detail = str(getattr(error, "orig", None) or type(error).__name__).splitlines()[0][:300]
            raise ToolExecutionError(
                "sql_error", f"{binding.operation} on {binding.table} failed: {detail}"
            ) from None

    async def close(self) -> None:
        for engine in self._engines.values():
            await engine.dispose()
        self._engines.clear()
