"""Running HTTP-bound tools: one request per call through httpx, bounded in every way.

Owns sending (the request itself is built by http_request.py), the per-call timeout,
retries with exponential backoff (idempotent methods only, on connection errors and 5xx),
optional mTLS with the gateway's configured client certificate, and turning the response
into tool content (JSON answers parsed within the caller-data bounds). The endpoint is
checked against the allowlist again at call time, its host resolved and every address
checked (egress.py) and the connection pinned to it, and redirects are never followed, so
a registered tool cannot be steered elsewhere.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import dataclass
from typing import Any

import httpx

from mcp_ledger.checks.documents import MAX_NESTING, DocumentError, load_json
from mcp_ledger.consumers.bindings.egress import pinned
from mcp_ledger.consumers.bindings.http_request import build_request
from mcp_ledger.consumers.tools import ToolExecutionError, ToolOutcome, structured_outcome
from mcp_ledger.domain.registry.bindings import HttpBinding
from mcp_ledger.domain.registry.registration import endpoint_problem

log = logging.getLogger(__name__)

RETRYABLE_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.ReadError, httpx.RemoteProtocolError)


@dataclass(frozen=True)
class HttpRunnerConfig:
    """Gateway-wide settings for HTTP tools (from LEDGER_* settings)."""

    allowed_hosts: tuple[str, ...] = ()
    client_cert: str | None = None
    client_key: str | None = None
    ca_bundle: str | None = None
    max_response_bytes: int = 1024 * 1024
    backoff_s: float = 0.05


def outcome_from_response(status: int, body: bytes, content_type: str) -> ToolOutcome:
    """Tool content from a 2xx response: JSON becomes structured content (objects as they
    are, anything else under "result"), other bodies become text."""
    if "json" in content_type and body:
        # The answer becomes event data and the next tool's arguments: nested no deeper
        # than arguments may be (the wrapping under "result" included).
        value = load_json(body, max_bytes=len(body), max_depth=MAX_NESTING - 1, what="the response")
        return structured_outcome(value if isinstance(value, dict) else {"result": value})
    text = body.decode(errors="replace")
    return ToolOutcome([{"type": "text", "text": text}], {"result": text} if text else {"status": status})


class HttpToolRunner:
    """Calls HTTP operations; one pooled client per TLS identity, closed by `close()`."""

    def __init__(
        self, config: HttpRunnerConfig, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._config = config
        self._transport = transport
        self._clients: dict[bool, httpx.AsyncClient] = {}

    def _tls(self, mtls: bool) -> ssl.SSLContext | bool:
        if mtls and not (self._config.client_cert and self._config.client_key):
            raise ToolExecutionError("tool_unavailable", "this tool needs mTLS; no client certificate is set")
        if not mtls and not self._config.ca_bundle:
            return True
        context = ssl.create_default_context(cafile=self._config.ca_bundle)
        if mtls:
            context.load_cert_chain(self._config.client_cert or "", self._config.client_key)
        return context

    def _client(self, mtls: bool) -> httpx.AsyncClient:
        client = self._clients.get(mtls)
        if client is None:
            client = httpx.AsyncClient(
                verify=self._tls(mtls), follow_redirects=False, transport=self._transport
            )
            self._clients[mtls] = client
        return client

    async def run(self, binding: HttpBinding, arguments: dict[str, Any]) -> ToolOutcome:
        """Call the operation with these arguments.

        Raises:
            ToolExecutionError: refused endpoint, unreachable service, non-2xx answer.
        """
        url, query, headers = build_request(binding, arguments)
        problem = endpoint_problem(url, self._config.allowed_hosts)
        if problem is not None:
            raise ToolExecutionError("endpoint_refused", problem)
        url, host, extensions = await pinned(url, self._config.allowed_hosts)
        headers = {**headers, **host}
        body = arguments.get(binding.body_argument) if binding.body_argument else None
        attempts = 1 + (binding.retries if binding.idempotent else 0)
        client = self._client(binding.mtls)
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                status, data, content_type = await self._send(
                    client, binding, url, query, headers, body, extensions
                )
            except RETRYABLE_ERRORS as error:
                if last:
                    raise ToolExecutionError(
                        "http_unreachable", f"{binding.method} {url}: {error!r}"
                    ) from None
            except httpx.TimeoutException:
                if last:
                    raise ToolExecutionError(
                        "http_timeout", f"no answer within {binding.timeout_s}s"
                    ) from None
            else:
                if status < 500 or last:
                    return self._outcome(status, data, content_type)
            log.info("retrying %s %s (attempt %d of %d)", binding.method, url, attempt + 2, attempts)
            await asyncio.sleep(self._config.backoff_s * 2**attempt)
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _send(
        self,
        client: httpx.AsyncClient,
        binding: HttpBinding,
        url: str,
        query: dict[str, str],
        headers: dict[str, str],
        body: Any,
        extensions: dict[str, Any],
    ) -> tuple[int, bytes, str]:
        request = client.build_request(
            binding.method,
            url,
            params=query,
            headers=headers,
            json=body,
            timeout=binding.timeout_s,
            extensions=extensions,
        )
        response = await client.send(request, stream=True)
        try:
            chunks, size = [], 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > self._config.max_response_bytes:
                    raise ToolExecutionError(
                        "response_too_large", f"the response exceeds {self._config.max_response_bytes} bytes"
                    )
                chunks.append(chunk)
            return response.status_code, b"".join(chunks), response.headers.get("content-type", "")
        finally:
            await response.aclose()

    def _outcome(self, status: int, data: bytes, content_type: str) -> ToolOutcome:
        if 200 <= status < 300:
            try:
                return outcome_from_response(status, data, content_type)
            except DocumentError as error:
                raise ToolExecutionError("bad_response", f"the service sent unusable JSON: {error}") from None
        excerpt = data[:500].decode(errors="replace")
        raise ToolExecutionError("http_error", f"HTTP {status}: {excerpt}")

    async def close(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()
