"""The admin erasure endpoint refuses before anything is published."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from starlette.applications import Starlette
from starlette.testclient import TestClient

from mcp_ledger.mcp_api.auth.identity import LocalIdentityResolver
from mcp_ledger.mcp_api.gateway import CommandGateway
from mcp_ledger.mcp_api.routes.admin import admin_routes
from mcp_ledger.mcp_api.routes.opt_outs import opt_out_routes
from mcp_ledger.producers.ports import Handler, Outgoing


class RecordingBus:
    def __init__(self) -> None:
        self.published: list[tuple[str, bytes]] = []

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def subscribe(
        self, topic: str, handler: Handler, *, group: str | None, concurrency: int = 1, in_flight: int = 1
    ) -> None: ...

    async def publish(
        self, topic: str, key: str, value: bytes, headers: Mapping[str, str] | None = None
    ) -> None:
        self.published.append((topic, value))

    async def publish_many(self, topic: str, messages: Sequence[Outgoing]) -> None:
        self.published.extend((topic, m.value) for m in messages)


def _post(roles: tuple[str, ...], body: object) -> tuple[int, RecordingBus]:
    bus = RecordingBus()
    gateway = CommandGateway(bus, "commands", timeout=0.05)
    routes = admin_routes(gateway, "compliance", LocalIdentityResolver("acme", "root", roles))
    with TestClient(Starlette(routes=routes)) as client:
        answer = client.post("/admin/erasures", json=body)
    return answer.status_code, bus


def test_a_caller_without_the_admin_role_is_refused() -> None:
    status, bus = _post(("viewer", "operator"), {"subject": "victim"})
    assert status == 403
    assert bus.published == []


def test_a_request_without_a_subject_is_refused() -> None:
    status, bus = _post(("admin",), {"who": "victim"})
    assert status == 400
    assert bus.published == []


def test_an_admins_request_is_published_on_the_compliance_topic_for_their_own_tenant() -> None:
    status, bus = _post(("admin",), {"subject": "victim"})
    assert status == 202  # no worker answers here, so it is accepted, not completed
    [(topic, value)] = bus.published
    assert topic == "compliance"
    assert b'"tenant":"acme"' in value
    assert b'"subject":"victim"' in value


def test_recording_an_opt_out_for_someone_else_needs_the_admin_role() -> None:
    bus = RecordingBus()
    gateway = CommandGateway(bus, "commands", timeout=0.05)
    for roles, expected in ((("operator",), 403), (("admin",), 202)):
        routes = opt_out_routes(gateway, LocalIdentityResolver("acme", "root", roles))
        with TestClient(Starlette(routes=routes)) as client:
            assert client.post("/admin/opt-outs", json={"subject": "victim"}).status_code == expected
    [(topic, value)] = bus.published  # only the admin's, as a call of the admin-only tool
    assert topic == "commands"
    assert b'"tool_name":"privacy_set_opt_out"' in value
