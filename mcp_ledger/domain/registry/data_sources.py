"""Tools generated for a connected SQL data source, from the shape of its tables.

Pure: takes table shapes (as reflection found them) and returns tool definitions with SQL
bindings: read by key, query with equality filters, insert, update and delete by key, and
one `related` query per foreign key. Write tools require the operator role. Tables whose
names or columns are not plain identifiers are skipped, never quoted into SQL.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from mcp_ledger.domain.registry.bindings import IDENTIFIER, SqlBinding, SqlOperation
from mcp_ledger.domain.registry.model import ToolDefinition
from mcp_ledger.domain.registry.registration import WRITE_MINIMUM_ROLE
from mcp_ledger.domain.tools import JSONSchema

_IDENT = re.compile(IDENTIFIER)


@dataclass(frozen=True)
class ColumnShape:
    name: str
    json_type: str
    """JSON Schema type of the column's values: string, integer, number, boolean."""
    nullable: bool = True


@dataclass(frozen=True)
class ForeignKeyShape:
    columns: tuple[str, ...]
    referred_table: str
    referred_columns: tuple[str, ...]


@dataclass(frozen=True)
class TableShape:
    name: str
    columns: tuple[ColumnShape, ...]
    primary_key: tuple[str, ...]
    foreign_keys: tuple[ForeignKeyShape, ...] = field(default_factory=tuple)
    schema_name: str | None = None


def _column_schema(column: ColumnShape) -> JSONSchema:
    types: list[str] = [column.json_type] if column.json_type != "any" else []
    if types and column.nullable:
        types.append("null")
    return {"type": types[0] if len(types) == 1 else types} if types else {}


def _object(properties: dict[str, JSONSchema], required: list[str]) -> JSONSchema:
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


def _plain(table: TableShape) -> bool:
    names = [table.name, *(c.name for c in table.columns), *(table.schema_name or "x",)]
    return all(_IDENT.match(name) for name in names)


def _inputs(table: TableShape, operation: SqlOperation) -> JSONSchema:
    columns = {c.name: _column_schema(c) for c in table.columns}
    keys = {name: columns[name] for name in table.primary_key}
    values = {"type": "object", "properties": columns, "additionalProperties": False, "minProperties": 1}
    if operation in {"read", "delete"}:
        return _object(keys, list(keys))
    if operation == "query":
        where = {"type": "object", "properties": columns, "additionalProperties": False}
        limit = {"type": "integer", "minimum": 1, "maximum": 1000}
        return _object({"where": where, "limit": limit}, [])
    if operation == "insert":
        return _object({"values": values}, ["values"])
    return _object({**keys, "values": values}, [*keys, "values"])


_OUTPUTS: dict[str, JSONSchema] = {
    "read": _object({"found": {"type": "boolean"}, "row": {"type": ["object", "null"]}}, ["found", "row"]),
    "query": _object({"rows": {"type": "array", "items": {"type": "object"}}}, ["rows"]),
    "related": _object({"rows": {"type": "array", "items": {"type": "object"}}}, ["rows"]),
    "insert": _object({"inserted": {"type": "integer"}}, ["inserted"]),
    "update": _object({"updated": {"type": "integer"}}, ["updated"]),
    "delete": _object({"deleted": {"type": "integer"}}, ["deleted"]),
}
_VERBS = {
    "read": "Read one row of {t} by its primary key.",
    "query": "Query rows of {t} with equality filters (parameterised SQL).",
    "insert": "Insert one row into {t}.",
    "update": "Update one row of {t} by its primary key.",
    "delete": "Delete one row of {t} by its primary key.",
}


def _definition(source: str, table: TableShape, operation: SqlOperation) -> ToolDefinition:
    binding = SqlBinding(
        source=source,
        table=table.name,
        schema_name=table.schema_name,
        operation=operation,
        columns=tuple(c.name for c in table.columns),
        key_columns=table.primary_key,
    )
    writes = binding.writes
    return ToolDefinition(
        name=f"{source}_{table.name}_{operation}",
        title=f"{source}: {operation} {table.name}",
        description=_VERBS[operation].format(t=table.name) + f" Data source {source!r}.",
        input_schema=_inputs(table, operation),
        output_schema=_OUTPUTS[operation],
        binding=binding,
        category="data-source",
        minimum_role=WRITE_MINIMUM_ROLE if writes else None,
    )


def _related(source: str, parent: TableShape, child: TableShape, fk: ForeignKeyShape) -> ToolDefinition:
    columns = {c.name: _column_schema(c) for c in parent.columns}
    keys = {name: columns[name] for name in fk.referred_columns}
    binding = SqlBinding(
        source=source,
        table=parent.name,
        schema_name=parent.schema_name,
        operation="related",
        columns=tuple(c.name for c in parent.columns),
        key_columns=fk.referred_columns,
        related_table=child.name,
        related_columns=tuple(c.name for c in child.columns),
        related_foreign_key=fk.columns,
    )
    return ToolDefinition(
        name=f"{source}_{parent.name}_{child.name}_by_{'_'.join(fk.columns)}",
        title=f"{source}: {child.name} of a {parent.name}",
        description=f"Rows of {child.name} whose {', '.join(fk.columns)} refer to one {parent.name}.",
        input_schema=_object(keys, list(keys)),
        output_schema=_OUTPUTS["related"],
        binding=binding,
        category="data-source",
    )


def tools_for_tables(source: str, tables: list[TableShape], *, writes: bool = True) -> list[ToolDefinition]:
    """Definitions for every usable table (key-based tools need a primary key). Tools whose
    generated name would be too long are left out rather than renamed unpredictably."""
    usable = {t.name: t for t in tables if _plain(t)}
    makers: list[Callable[[], ToolDefinition]] = []
    for table in usable.values():
        operations: list[SqlOperation] = ["query"]
        if table.primary_key:
            operations += ["read", *(("insert", "update", "delete") if writes else ())]
        makers += [partial(_definition, source, table, op) for op in operations]
        for fk in table.foreign_keys:
            parent = usable.get(fk.referred_table)
            if parent is not None and all(_IDENT.match(c) for c in fk.columns):
                makers.append(partial(_related, source, parent, table, fk))
    definitions = []
    for make in makers:
        try:
            definitions.append(make())
        except ValueError:  # pydantic refused the generated name (too long)
            continue
    return definitions
