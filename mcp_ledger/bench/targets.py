"""Which services a benchmark can run its distributed target on."""

from __future__ import annotations

from mcp_ledger.eventstore.migrations import upgrade_to_head
from mcp_ledger.settings import Settings


def distributed_env(settings: Settings) -> dict[str, str] | None:
    """LEDGER_BUS/STORE/STATE for processes of the distributed target, with the store migrated,
    or None when the settings do not name Kafka, PostgreSQL and Redis."""
    if not (settings.bus.startswith("kafka://") and settings.store and settings.state.startswith("redis")):
        return None
    upgrade_to_head(settings.store)
    return {"LEDGER_BUS": settings.bus, "LEDGER_STORE": settings.store, "LEDGER_STATE": settings.state}
