"""Which upstream server answers a resource URI or a prompt name in a scope.

Resources by exact URI, then resource templates by their literal prefix (the part before
the first `{`, longest first); prompts by their exposed name (the server's prefix, as for
tools). Used by the API to list and route, and by the worker to find the server again
(it never trusts the API's choice: the scope's views decide).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mcp_ledger.projections.registry.view import UpstreamView

Scoped = tuple[str | None, UpstreamView]


@dataclass(frozen=True, slots=True)
class Route:
    scope: str | None
    upstream: UpstreamView
    name: str
    """The URI, or the prompt's name at the upstream."""


def resource_route(upstreams: Sequence[Scoped], uri: str) -> Route | None:
    """The server of a resource URI, None when no upstream here offers it."""
    for scope, upstream in upstreams:
        if any(resource.get("uri") == uri for resource in upstream.resources):
            return Route(scope, upstream, uri)
    matches = [
        (len(prefix), scope, upstream)
        for scope, upstream in upstreams
        for template in upstream.resource_templates
        if (prefix := str(template.get("uriTemplate", "")).split("{", 1)[0]) and uri.startswith(prefix)
    ]
    if not matches:
        return None
    _, scope, upstream = max(matches, key=lambda match: match[0])
    return Route(scope, upstream, uri)


def template_route(upstreams: Sequence[Scoped], uri_template: str) -> Route | None:
    """The server offering exactly this resource template."""
    for scope, upstream in upstreams:
        if any(t.get("uriTemplate") == uri_template for t in upstream.resource_templates):
            return Route(scope, upstream, uri_template)
    return None


def prompt_route(upstreams: Sequence[Scoped], exposed: str) -> Route | None:
    """The server and upstream name of an exposed prompt name."""
    for scope, upstream in upstreams:
        for prompt in upstream.prompts:
            name = str(prompt.get("name", ""))
            if upstream.server.exposed_name(name) == exposed:
                return Route(scope, upstream, name)
    return None
