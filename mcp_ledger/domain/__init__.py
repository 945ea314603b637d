"""The pure core: commands, events and the aggregates (session, plans, registry, compliance).

Imports only the standard library and pydantic; knows nothing of Kafka, SQL, Redis or HTTP.
The shared kernel (commands, events, streams, access, the tool catalog) sits here; each
aggregate has its package.
"""

# Event types defined beside their aggregate register themselves in events.EVENT_TYPES: load
# them wherever events are read or written.
from mcp_ledger.domain.compliance import erasure as _erasure  # noqa: F401
from mcp_ledger.domain.compliance import privacy as _privacy  # noqa: F401
from mcp_ledger.domain.plans import events as _plan_events  # noqa: F401
from mcp_ledger.domain.registry import events as _registry_events  # noqa: F401
from mcp_ledger.domain.tasks import events as _task_events  # noqa: F401
from mcp_ledger.domain.upstreams import events as _upstream_events  # noqa: F401
