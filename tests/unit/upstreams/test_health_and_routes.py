"""The circuit breaker (a fake clock) and how resource URIs and prompt names find their
upstream server."""

from __future__ import annotations

import pytest

from mcp_ledger.consumers.tools import ToolExecutionError
from mcp_ledger.consumers.upstreams.health import Breakers
from mcp_ledger.domain.upstreams.model import UpstreamServer
from mcp_ledger.projections.registry.upstream_routes import prompt_route, resource_route
from mcp_ledger.projections.registry.view import UpstreamView


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_breaker_opens_after_the_threshold_and_lets_one_call_through_after_the_cooldown() -> None:
    clock = Clock()
    breakers = Breakers(threshold=2, cooldown_s=10, clock=clock)
    key = ("t", None, "up")
    breakers.failed(key, "refused")
    breakers.admit(key)  # one failure: still closed
    breakers.failed(key, "refused")
    with pytest.raises(ToolExecutionError, match="circuit is open"):
        breakers.admit(key)
    clock.now = 11
    breakers.admit(key)  # half-open
    assert breakers.summary(key)["breaker"] == "half-open"
    breakers.succeeded(key, 0.01)
    assert breakers.summary(key)["breaker"] == "closed"
    assert breakers.overview() == {"tracked": 1, "open_circuits": 0, "failing": 0}


def test_half_open_lets_exactly_one_probe_through_and_a_failed_probe_reopens() -> None:
    clock = Clock()
    breakers = Breakers(threshold=2, cooldown_s=10, clock=clock)
    key = ("t", None, "up")
    assert breakers.admit(key) is False  # closed: not a probe
    breakers.failed(key, "timeout")
    breakers.failed(key, "timeout")
    clock.now = 10
    assert breakers.admit(key) is True  # the probe
    with pytest.raises(ToolExecutionError, match="circuit is open"):
        breakers.admit(key)  # while the probe is in flight, the others fail at once
    clock.now = 12
    breakers.failed(key, "timeout")  # the probe failed: open again for a whole cooldown
    with pytest.raises(ToolExecutionError, match="circuit is open, retry in 10s"):
        breakers.admit(key)
    assert breakers.summary(key)["breaker"] == "open"
    clock.now = 22
    assert breakers.admit(key) is True
    breakers.abandoned(key, probe=True)  # cancelled: nothing counted, the next call probes
    assert breakers.summary(key)["consecutive_failures"] == 3
    assert breakers.admit(key) is True
    breakers.succeeded(key, 0.01)
    assert breakers.admit(key) is False
    assert breakers.summary(key)["breaker"] == "closed"


def test_a_failure_below_the_threshold_is_forgotten_after_an_answer() -> None:
    breakers = Breakers(threshold=2, cooldown_s=10, clock=Clock())
    key = ("t", None, "up")
    breakers.failed(key, "timeout")
    breakers.succeeded(key, 0.01)
    breakers.failed(key, "timeout")
    assert breakers.admit(key) is False  # not two in a row
    assert breakers.overview() == {"tracked": 1, "open_circuits": 0, "failing": 1}


def _view(name: str, prefix: str | None = None) -> UpstreamView:
    return UpstreamView(
        server=UpstreamServer(name=name, url="http://u/mcp", prefix=prefix),
        resources=[{"uri": f"{name}://readme", "name": "readme"}],
        resource_templates=[{"uriTemplate": f"{name}://items/{{id}}", "name": "item"}],
        prompts=[{"name": "greet"}],
    )


def test_resources_route_by_exact_uri_then_by_the_template_s_literal_prefix() -> None:
    upstreams = [(None, _view("a")), ("s1", _view("b"))]
    exact = resource_route(upstreams, "b://readme")
    templated = resource_route(upstreams, "a://items/7")
    assert exact is not None
    assert (exact.scope, exact.upstream.server.name) == ("s1", "b")
    assert templated is not None
    assert templated.upstream.server.name == "a"
    assert resource_route(upstreams, "c://readme") is None


def test_prompts_route_by_their_exposed_name() -> None:
    upstreams = [(None, _view("a", prefix="pa")), (None, _view("b"))]
    found = prompt_route(upstreams, "pa_greet")
    assert found is not None
    assert (found.upstream.server.name, found.name) == ("a", "greet")
    plain = prompt_route(upstreams, "greet")
    assert plain is not None
    assert plain.upstream.server.name == "b"
