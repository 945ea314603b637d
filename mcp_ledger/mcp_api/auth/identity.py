"""Who is calling: tenant and subject, taken from the HTTP request.

This version serves one local identity (the embedded, loopback-only default). JWT
validation (OAuth 2.1 resource server) replaces `LocalIdentityResolver` behind the same
`IdentityResolver` protocol.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

SESSION_HEADER = "ledger-session"
_SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{8,128}$")


@dataclass(frozen=True, slots=True)
class Identity:
    tenant: str
    subject: str
    roles: tuple[str, ...] = ()


class IdentityResolver(Protocol):
    def resolve(self, request: Any) -> Identity:
        """The caller's identity for an HTTP request."""
        ...


@dataclass(frozen=True, slots=True)
class LocalIdentityResolver:
    """Everyone is the configured local user: only for loopback development."""

    tenant: str
    subject: str
    roles: tuple[str, ...] = ("admin",)

    def resolve(self, request: Any) -> Identity:
        return Identity(self.tenant, self.subject, self.roles)


class BadSessionHeaderError(ValueError):
    """The session header is not a session id."""


def session_from_headers(request: Any) -> str | None:
    """The session id the request names, None when it names none.

    Raises:
        BadSessionHeaderError: the header is present but malformed.
    """
    if request is None:
        return None
    value = request.headers.get(SESSION_HEADER)
    if value is None or value == "":
        return None
    if not _SESSION_ID.match(value):
        raise BadSessionHeaderError("the Ledger-Session header is not a session id")
    return str(value)
