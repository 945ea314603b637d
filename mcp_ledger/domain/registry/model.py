"""What a registered tool is: its definition (presentation, requirements, binding) and version.

A ToolDefinition is what a registration submits (by MCP, HTTP, gRPC or a manifest); the
registry stores it with a version number. Pipeability says which typed values a tool
accepts and produces, so pipelines can be checked when they are composed.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from mcp_ledger.domain.personal import DataRecipient
from mcp_ledger.domain.registry.bindings import HttpBinding, McpBinding, SqlBinding, ToolBinding
from mcp_ledger.domain.tools import JSONSchema, ToolSpec

TOOL_NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$"
TypeName = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:/-]+$")]


class Pipeability(BaseModel):
    """Typed values a tool takes in and gives out (x-mcp-tool pipeability)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    accepts: tuple[TypeName, ...] = ()
    produces: tuple[TypeName, ...] = ()
    pointer_arguments: tuple[Annotated[str, Field(min_length=1, max_length=128)], ...] = ()
    """Input properties that take a resource_link URI (a signed pointer): the worker checks
    the pointer for the caller and session, and the tool gets the document it points at."""


class ToolDefinition(BaseModel):
    """A tool as registered: everything an agent sees plus how it runs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=TOOL_NAME_PATTERN)
    title: str = Field("", max_length=200)
    description: str = Field(min_length=1, max_length=4000)
    input_schema: JSONSchema
    output_schema: JSONSchema | None = None
    binding: ToolBinding
    category: str | None = Field(None, max_length=100)
    pipeability: Pipeability = Field(default_factory=Pipeability)
    minimum_role: str | None = None
    allowed_roles: tuple[str, ...] = ()
    data_recipient: DataRecipient = "third_party"
    """Who receives the personal data sent to an HTTP tool; opted-out subjects' calls to a
    third party are refused (domain/privacy.py)."""

    @property
    def read_only(self) -> bool:
        if isinstance(self.binding, HttpBinding):
            return self.binding.method in {"GET", "HEAD", "OPTIONS"}
        return not self.binding.writes

    def spec(self) -> ToolSpec:
        """The ToolSpec agents see and the worker admits against."""
        return ToolSpec(
            name=self.name,
            title=self.title or self.name,
            description=self.description,
            input_schema=self.input_schema,
            output_schema=self.output_schema,
            # Pointers are bound to a session: a tool reading them runs in the caller's.
            needs_session=isinstance(self.binding, SqlBinding) or bool(self.pipeability.pointer_arguments),
            read_only=self.read_only,
            minimum_role=self.minimum_role,
            allowed_roles=frozenset(self.allowed_roles),
            annotations=_annotations(self),
            listing=_listing(self.binding) if isinstance(self.binding, McpBinding) else None,
            timeout_s=self.binding.timeout_s + 10 if isinstance(self.binding, McpBinding) else None,
            task_support=self.binding.task_support if isinstance(self.binding, McpBinding) else "forbidden",
        )


def _listing(binding: McpBinding) -> dict[str, object]:
    listing: dict[str, object] = {"annotations": binding.annotations}
    if binding.icons:
        listing["icons"] = list(binding.icons)
    if binding.meta:
        listing["_meta"] = binding.meta
    return listing


def _annotations(definition: ToolDefinition) -> dict[str, object]:
    notes: dict[str, object] = {}
    if definition.category:
        notes["category"] = definition.category
    pipes = definition.pipeability
    if pipes.accepts or pipes.produces or pipes.pointer_arguments:
        notes["pipeability"] = definition.pipeability.model_dump(mode="json")
    return notes


class RegisteredTool(BaseModel):
    """A definition as the registry holds it; `version` counts its registrations and updates."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    definition: ToolDefinition
    version: int = Field(ge=1)
