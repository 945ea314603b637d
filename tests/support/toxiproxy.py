"""A small typed client of Toxiproxy's HTTP API (the server scripts/services.sh builds and starts):
proxies between the gateway's processes and a service, and the toxics that degrade them.

Owns creating proxies on loopback ports Toxiproxy picks (or a fixed one where the service must
know it in advance: Kafka advertises the proxy's address), adding and removing toxics, and
taking them all away again: `proxies()` is a context manager that deletes its proxies (and so
their toxics) at exit, even when the test failed, and `Proxy.toxic()` removes its toxic at the
end of its block. Does not decide which faults a test injects (tests/faults does).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Literal

import httpx

Stream = Literal["upstream", "downstream"]
"""Toxiproxy's names: upstream is client -> service, downstream is service -> client."""
ToxicType = Literal["latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer", "limit_data"]
API_SECONDS = 10.0


class ToxiproxyError(RuntimeError):
    """Toxiproxy refused a request (the message carries its answer)."""


def _checked(response: httpx.Response) -> httpx.Response:
    if response.is_error:
        raise ToxiproxyError(
            f"{response.request.method} {response.request.url}: {response.status_code} {response.text}"
        )
    return response


@dataclass(frozen=True)
class Proxy:
    """One proxy: connect to `listen` instead of `upstream`."""

    api: httpx.Client
    name: str
    listen: str
    upstream: str

    @property
    def port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])

    def add_toxic(
        self,
        kind: ToxicType,
        attributes: Mapping[str, int],
        *,
        stream: Stream = "downstream",
        toxicity: float = 1.0,
        name: str | None = None,
    ) -> str:
        """Add a toxic; returns its name.

        Raises:
            ToxiproxyError: Toxiproxy refused it (an unknown attribute, a duplicate name).
        """
        toxic = name or f"{kind}_{stream}"
        body = {
            "name": toxic,
            "type": kind,
            "stream": stream,
            "toxicity": toxicity,
            "attributes": dict(attributes),
        }
        _checked(self.api.post(f"/proxies/{self.name}/toxics", json=body))
        return toxic

    def remove_toxic(self, toxic: str) -> None:
        """Remove one toxic (a toxic already gone is not an error)."""
        response = self.api.delete(f"/proxies/{self.name}/toxics/{toxic}")
        if response.status_code != 404:
            _checked(response)

    def toxics(self) -> list[str]:
        """The names of the toxics on this proxy now."""
        return [str(t["name"]) for t in _checked(self.api.get(f"/proxies/{self.name}/toxics")).json()]

    def clear(self) -> None:
        """Remove every toxic of this proxy."""
        for toxic in self.toxics():
            self.remove_toxic(toxic)

    @contextmanager
    def toxic(
        self, kind: ToxicType, attributes: Mapping[str, int], *, stream: Stream = "downstream"
    ) -> Iterator[str]:
        """A toxic for the length of the block, removed at its end whatever happened."""
        name = self.add_toxic(kind, attributes, stream=stream)
        try:
            yield name
        finally:
            self.remove_toxic(name)

    def set_enabled(self, enabled: bool) -> None:
        """Disabled, the proxy refuses connections and drops the open ones (a hard partition)."""
        _checked(self.api.post(f"/proxies/{self.name}", json={"enabled": enabled}))


@contextmanager
def proxies(
    url: str, upstreams: Mapping[str, str], *, listen: Mapping[str, str] | None = None
) -> Iterator[dict[str, Proxy]]:
    """Proxies named `name-…` for each name -> upstream ("host:port"), each listening on a loopback
    port Toxiproxy picks unless `listen` fixes it; all deleted at exit.

    Raises:
        ToxiproxyError: one could not be created (e.g. its fixed port is taken).
    """
    with httpx.Client(base_url=url, timeout=API_SECONDS) as api:
        made: dict[str, Proxy] = {}
        try:
            for name, upstream in upstreams.items():
                address = (listen or {}).get(name, "127.0.0.1:0")
                body = {"name": name, "listen": address, "upstream": upstream, "enabled": True}
                created = _checked(api.post("/proxies", json=body)).json()
                made[name] = Proxy(api, name, str(created["listen"]), upstream)
            yield made
        finally:
            for name in made:
                with suppress(httpx.HTTPError):
                    api.delete(f"/proxies/{name}")


def version(url: str) -> str:
    """The running server's version (a cheap check that it answers)."""
    with httpx.Client(base_url=url, timeout=API_SECONDS) as api:
        return _checked(api.get("/version")).text.strip()
