"""The audit log contract on SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcp_ledger.eventstore.migrations import upgrade_to_head_async
from tests.contracts.audit_contract import AuditLogContract


class TestSqliteAuditLog(AuditLogContract):
    @pytest.fixture
    async def database_url(self, tmp_path: Path) -> str:
        url = f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"
        await upgrade_to_head_async(url)
        return url
