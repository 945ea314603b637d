"""Every tool the gateway itself provides, and so every name a registered tool may not take.

Built from the specs themselves (built-in and state tools, the registry's and privacy's
tools, the plan tools with replan_plan, run_pipeline), never from a list of names written a
second time: a new gateway tool is reserved the moment its spec joins one of these groups.
Registration checks (checks/registrations.py), the tool catalog and the metrics labels read
`RESERVED_TOOL_NAMES`; the API lists and routes these specs before any registered tool.
"""

from __future__ import annotations

from mcp_ledger.domain.compliance.privacy import privacy_tool_specs
from mcp_ledger.domain.pipelines import RUN_PIPELINE
from mcp_ledger.domain.plans.tools import plan_tool_specs
from mcp_ledger.domain.registry.tools import DEFAULT_REGISTERING_ROLE, registry_tool_specs
from mcp_ledger.domain.tools import ToolSpec, builtin_catalog
from mcp_ledger.domain.upstreams.tools import upstream_tool_specs


def gateway_tool_specs(registering_role: str = DEFAULT_REGISTERING_ROLE) -> dict[str, ToolSpec]:
    """The gateway's own tools by name; `registering_role` only changes the registry tools' role."""
    groups = (
        builtin_catalog(),
        registry_tool_specs(registering_role),
        upstream_tool_specs(registering_role),
        privacy_tool_specs(),
        plan_tool_specs(),
        {RUN_PIPELINE.name: RUN_PIPELINE},
    )
    specs: dict[str, ToolSpec] = {}
    for group in groups:
        for name, spec in group.items():
            # Two groups claiming one name would make one of them unreachable.
            assert name not in specs, f"gateway tool {name!r} is defined twice"
            specs[name] = spec
    return specs


RESERVED_TOOL_NAMES: frozenset[str] = frozenset(gateway_tool_specs())
"""Names no registered tool may take, in any scope, through any way in."""
