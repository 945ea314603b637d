"""Registration rules: what a tool definition must satisfy before any registry accepts it.

Pure checks on data: name, sizes, roles, local-only `$ref`s, and the endpoint allowlist
(http/https only, host allowlisted, no userinfo, link-local and cloud metadata addresses
refused unless named exactly). Whether the schemas are valid JSON Schema is checked
against the meta-schema outside the domain (mcp_ledger/checks/registrations.py).
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from mcp_ledger.domain.access import ROLE_LADDER, rank
from mcp_ledger.domain.registry.bindings import HttpBinding, McpBinding, SqlBinding, path_template_problems
from mcp_ledger.domain.registry.model import ToolDefinition

METADATA_HOSTS: frozenset[str] = frozenset(
    {"metadata", "metadata.google.internal", "metadata.azure.com", "instance-data", "100.100.100.200"}
)
WRITE_MINIMUM_ROLE = "operator"
POINTER_TYPE = "resource_link"
"""The pipe type of a signed pointer to a server-side document (blob_put's output)."""


class RegistrationError(ValueError):
    """A registration was refused; `problems` say why, one sentence each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class RegistrationPolicy:
    """What this gateway accepts. `allowed_hosts` entries: "host", "host:port", "*.domain" or "*"."""

    allowed_hosts: tuple[str, ...] = ()
    reserved_names: frozenset[str] = field(default_factory=frozenset)
    max_definition_bytes: int = 64 * 1024
    max_tools: int = 200
    upstream: bool = False
    """True only for definitions made by upstream discovery: the one way an MCP binding is made."""


def _host_allowed(host: str, port: int | None, allowed: tuple[str, ...]) -> bool:
    for entry in (item.lower() for item in allowed):
        name, _, entry_port = entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "")
        if entry_port and (port is None or str(port) != entry_port):
            continue
        if name in {"*", host} or (name.startswith("*.") and host.endswith(name[1:])):
            return True
    return False


def _dangerous_address(host: str) -> bool:
    if host in METADATA_HOSTS:
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_link_local or address.is_multicast or address.is_unspecified or address.is_reserved


def endpoint_problem(url: str, allowed_hosts: tuple[str, ...]) -> str | None:
    """None when a tool may call this URL, else why not."""
    try:
        parts = urlsplit(url)
        host, port = (parts.hostname or "").lower(), parts.port
    except ValueError:
        return f"endpoint {url!r} is not a URL"
    if parts.scheme not in {"http", "https"}:
        return f"endpoint scheme {parts.scheme or '(none)'!r} is not allowed; use http or https"
    if parts.username is not None or parts.password is not None:
        return "endpoint URLs may not carry credentials (userinfo)"
    if not host:
        return f"endpoint {url!r} has no host"
    if _dangerous_address(host) and host not in {h.lower() for h in allowed_hosts}:
        return f"endpoint host {host!r} is a link-local or metadata address"
    if not _host_allowed(host, port, allowed_hosts):
        return f"endpoint host {host!r} is not on the gateway's allowlist"
    return None


def _refs(schema: Any) -> Iterator[str]:
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            yield from _refs(value)
    elif isinstance(schema, list):
        for item in schema:
            yield from _refs(item)


def remote_ref_problem(schema: Any) -> str | None:
    """Only local references (#/...): a remote $ref would make validation fetch URLs."""
    for ref in _refs(schema):
        if not ref.startswith("#"):
            return f"schema reference {ref!r} is not local (only '#/…' references are allowed)"
    return None


def _role_problems(definition: ToolDefinition) -> Iterator[str]:
    if definition.minimum_role is not None and rank(definition.minimum_role) < 0:
        yield f"{definition.name}: minimum_role must be one of {', '.join(ROLE_LADDER)}"
    binding = definition.binding
    if isinstance(binding, SqlBinding) and binding.writes:
        given = rank(definition.minimum_role) if definition.minimum_role else -1
        if given < rank(WRITE_MINIMUM_ROLE):
            yield f"{definition.name}: SQL write tools need minimum_role {WRITE_MINIMUM_ROLE!r} or higher"


def _pointer_problems(definition: ToolDefinition) -> Iterator[str]:
    pipes = definition.pipeability
    if pipes.pointer_arguments and POINTER_TYPE not in pipes.accepts:
        yield f"{definition.name}: pointer_arguments need {POINTER_TYPE!r} in pipeability.accepts"
    properties = definition.input_schema.get("properties")
    for name in pipes.pointer_arguments:
        schema = properties.get(name) if isinstance(properties, dict) else None
        if not isinstance(schema, dict) or schema.get("type") != "string":
            yield f"{definition.name}: pointer argument {name!r} must be a string property of input_schema"


def definition_problems(definition: ToolDefinition, policy: RegistrationPolicy) -> list[str]:
    """Every rule this definition breaks (empty: acceptable)."""
    name = definition.name
    problems: list[str] = []
    size = len(json.dumps(definition.model_dump(mode="json"), separators=(",", ":")).encode())
    if size > policy.max_definition_bytes:
        problems.append(f"{name}: definition is {size} bytes; the limit is {policy.max_definition_bytes}")
    if name in policy.reserved_names:
        problems.append(f"{name}: the name is taken by a built-in or tenant-wide tool")
    if definition.input_schema.get("type") != "object":
        problems.append(f"{name}: input_schema must describe an object (type: object)")
    for schema in (definition.input_schema, definition.output_schema):
        problem = remote_ref_problem(schema)
        if problem is not None:
            problems.append(f"{name}: {problem}")
    if isinstance(definition.binding, HttpBinding):
        problem = endpoint_problem(definition.binding.base_url, policy.allowed_hosts)
        if problem is not None:
            problems.append(f"{name}: {problem}")
        problems += [f"{name}: {problem}" for problem in path_template_problems(definition.binding)]
    if isinstance(definition.binding, McpBinding) and not policy.upstream:
        problems.append(f"{name}: MCP bindings come only from a registered upstream server (register_server)")
    problems.extend(_role_problems(definition))
    problems.extend(_pointer_problems(definition))
    return problems


def check_definitions(definitions: list[ToolDefinition], policy: RegistrationPolicy) -> None:
    """Refuse the whole batch if any definition breaks a rule or names repeat.

    Raises:
        RegistrationError: with every problem found.
    """
    problems: list[str] = []
    if not definitions:
        problems.append("nothing to register")
    if len(definitions) > policy.max_tools:
        problems.append(f"{len(definitions)} tools in one registration; the limit is {policy.max_tools}")
    names = [d.name for d in definitions]
    problems.extend(f"{n}: named twice" for n in sorted({n for n in names if names.count(n) > 1}))
    for definition in definitions:
        problems.extend(definition_problems(definition, policy))
    if problems:
        raise RegistrationError(problems)
