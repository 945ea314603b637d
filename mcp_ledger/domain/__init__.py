"""The pure core: commands, events, the Session aggregate and the built-in tool catalog.

Imports only the standard library and pydantic; knows nothing of Kafka, SQL, Redis or HTTP.
"""

# Registers the compliance and privacy (CCPA opt-out) event types wherever events are read or written.
from mcp_ledger.domain import compliance as compliance

# events registers the plan events it does not define: load it before any of them.
from mcp_ledger.domain import events as _events  # noqa: F401
from mcp_ledger.domain import privacy as privacy
