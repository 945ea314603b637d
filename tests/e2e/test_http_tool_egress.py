"""HTTP tools against a real local HTTPS service that requires client certificates (mTLS), and
the call-time address check that stops names resolving to private addresses (SSRF, DNS
rebinding)."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from mcp_ledger.consumers.bindings.egress import address_problem
from mcp_ledger.consumers.bindings.http_runner import HttpRunnerConfig, HttpToolRunner
from mcp_ledger.consumers.tools import ToolExecutionError
from mcp_ledger.domain.registry.bindings import HttpBinding
from tests.support.certificates import Authority, Issued, authority, issue
from tests.support.loopback import listening


@dataclass(frozen=True)
class Pki:
    ca: Authority
    client: Issued
    stranger: Issued
    """A client certificate from a CA the service does not trust."""


@dataclass(frozen=True)
class Service:
    port: int
    pki: Pki
    hosts: list[str]


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[Service]:
    ca = authority(tmp_path, "tools-ca")
    pki = Pki(
        ca,
        issue(ca, tmp_path, "gateway", server=False),
        issue(authority(tmp_path, "rogue"), tmp_path, "rogue-client", server=False),
    )
    server_cert = issue(ca, tmp_path, "service", server=True)
    hosts: list[str] = []

    async def whoami(request: Request) -> JSONResponse:
        hosts.append(request.headers["host"])
        return JSONResponse({"ok": True})

    config = uvicorn.Config(
        Starlette(routes=[Route("/whoami", whoami)]),
        host="127.0.0.1",
        port=0,
        log_level="critical",
        ssl_certfile=str(server_cert.cert),
        ssl_keyfile=str(server_cert.key),
        ssl_ca_certs=str(ca.path),
        ssl_cert_reqs=ssl.CERT_REQUIRED,
    )
    async with listening(config) as port:
        yield Service(port, pki, hosts)


def binding(host: str, port: int, *, mtls: bool) -> HttpBinding:
    return HttpBinding(
        method="GET", base_url=f"https://{host}:{port}", path="/whoami", mtls=mtls, retries=0, timeout_s=5
    )


async def call(config: HttpRunnerConfig, target: HttpBinding) -> dict[str, object] | ToolExecutionError:
    runner = HttpToolRunner(config)
    try:
        outcome = await runner.run(target, {})
    except ToolExecutionError as error:
        return error
    finally:
        await runner.close()
    assert outcome.structured is not None
    return outcome.structured


def config(service: Service, cert: Issued | None, *allowed: str) -> HttpRunnerConfig:
    return HttpRunnerConfig(
        allowed_hosts=allowed or ("127.0.0.1",),
        client_cert=str(cert.cert) if cert else None,
        client_key=str(cert.key) if cert else None,
        ca_bundle=str(service.pki.ca.path),
    )


async def test_an_mtls_tool_presents_the_configured_client_certificate_and_gets_through(
    service: Service,
) -> None:
    answer = await call(config(service, service.pki.client), binding("127.0.0.1", service.port, mtls=True))
    assert answer == {"ok": True}


async def test_without_a_trusted_client_certificate_the_service_refuses_the_call(service: Service) -> None:
    plain = await call(config(service, service.pki.client), binding("127.0.0.1", service.port, mtls=False))
    stranger = await call(
        config(service, service.pki.stranger), binding("127.0.0.1", service.port, mtls=True)
    )
    unconfigured = await call(config(service, None), binding("127.0.0.1", service.port, mtls=True))
    assert isinstance(plain, ToolExecutionError)
    assert plain.code == "http_unreachable"
    assert isinstance(stranger, ToolExecutionError)
    assert stranger.code == "http_unreachable"
    assert isinstance(unconfigured, ToolExecutionError)
    assert unconfigured.code == "tool_unavailable"
    assert service.hosts == []


async def test_a_name_resolving_to_loopback_is_refused_unless_that_address_is_allowlisted(
    service: Service,
) -> None:
    target = binding("localhost", service.port, mtls=True)
    refused = await call(config(service, service.pki.client, "localhost"), target)
    allowed = await call(config(service, service.pki.client, "localhost", "127.0.0.1", "::1"), target)
    assert isinstance(refused, ToolExecutionError)
    assert refused.code == "endpoint_refused"
    assert "resolves to" in refused.message
    # Pinned to the checked address, yet still "localhost" to the service and to TLS.
    assert allowed == {"ok": True}
    assert service.hosts == [f"localhost:{service.port}"]


@pytest.mark.parametrize(
    ("address", "allowed", "refused"),
    [
        ("93.184.216.34", (), False),
        ("169.254.169.254", ("*",), True),
        ("10.1.2.3", ("*.example.com",), True),
        ("10.1.2.3", ("10.0.0.0/8",), False),
        ("100.64.0.1", (), True),
        ("::ffff:127.0.0.1", (), True),
        ("127.0.0.1", ("127.0.0.1:9999",), True),
        ("127.0.0.1", ("127.0.0.1:443",), False),
        ("fd00::1", (), True),
        ("224.0.0.1", (), True),
    ],
)
def test_addresses_that_are_not_globally_routable_need_to_be_allowlisted_themselves(
    address: str, allowed: tuple[str, ...], refused: bool
) -> None:
    assert (address_problem(address, 443, allowed) is not None) is refused
