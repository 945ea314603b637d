"""Where an HTTP tool may connect: the host is resolved at call time and every address checked.

A host name that passed the allowlist at registration can later resolve anywhere (DNS
rebinding, or an internal name). So the runner resolves it once per call, refuses the call
if any address is not globally routable (private, loopback, link-local and cloud metadata,
carrier-grade NAT, reserved, multicast, unspecified) unless that address is allowlisted
itself (an exact IP or a CIDR entry; "*" never covers them), and connects to the checked
address, keeping the name for the Host header and TLS (SNI and certificate checks), so a
second lookup cannot steer the connection elsewhere.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from mcp_ledger.consumers.tools import ToolExecutionError

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _allowlisted(address: IpAddress, port: int, allowed: tuple[str, ...]) -> bool:
    for entry in allowed:
        name, entry_port = entry, ""
        if entry.count(":") == 1:  # host:port; bare IPv6 entries have several colons
            name, entry_port = entry.split(":")
        if entry_port and entry_port != str(port):
            continue
        try:
            if address in ipaddress.ip_network(name.strip("[]"), strict=False):
                return True
        except ValueError:
            continue
    return False


def address_problem(address: str, port: int, allowed: tuple[str, ...]) -> str | None:
    """None when a tool may connect to this address, else why not."""
    parsed: IpAddress = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        parsed = parsed.ipv4_mapped
    if parsed.is_global and not parsed.is_multicast:
        return None
    if _allowlisted(parsed, port, allowed):
        return None
    return f"resolves to {parsed}, a private, loopback, link-local or reserved address not allowlisted"


@dataclass(frozen=True, slots=True)
class Destination:
    """The checked address to connect to, for a host name."""

    host: str
    address: str

    def pin(self, url: str) -> str:
        """The URL with its host replaced by the checked address (port, path, query kept)."""
        parts = urlsplit(url)
        address = f"[{self.address}]" if ":" in self.address else self.address
        netloc = address if parts.port is None else f"{address}:{parts.port}"
        return urlunsplit(parts._replace(netloc=netloc))


async def resolve_destination(host: str, port: int, allowed: tuple[str, ...]) -> Destination:
    """The first address of `host` after checking all of them.

    Raises:
        ToolExecutionError: the name does not resolve, or an address is refused.
    """
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as error:
        raise ToolExecutionError("http_unreachable", f"cannot resolve {host!r}: {error}") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    for address in addresses:
        problem = address_problem(address, port, allowed)
        if problem is not None:
            raise ToolExecutionError("endpoint_refused", f"endpoint host {host!r} {problem}")
    return Destination(host, addresses[0])


async def pinned(url: str, allowed: tuple[str, ...]) -> tuple[str, dict[str, str], dict[str, Any]]:
    """(URL at the host's checked address, Host header, httpx extensions keeping the name for
    TLS SNI and certificate checks).

    Raises:
        ToolExecutionError: the host does not resolve or resolves somewhere refused.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    destination = await resolve_destination(host, port, allowed)
    extensions: dict[str, Any] = {"sni_hostname": host} if parts.scheme == "https" else {}
    return destination.pin(url), {"host": parts.netloc}, extensions
