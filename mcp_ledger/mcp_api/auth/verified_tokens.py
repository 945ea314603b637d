"""Recently verified access tokens, so an agent's every request does not pay a signature check.

Owns the bounded cache the JWT verifier consults first: keyed by the SHA-256 of the token (a
token is its own proof; nothing else about the request selects an entry), holding the claims
the full check produced, for at most `seconds` and never past the token's own expiry (plus the
verifier's clock leeway). Only tokens that passed every check are kept; a refused token is
checked in full every time. Does not verify anything itself (access_tokens.py does).
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any


class VerifiedTokens:
    """Claims of verified tokens by token hash, bounded in size and age."""

    def __init__(
        self,
        *,
        seconds: float = 60.0,
        max_entries: int = 10_000,
        leeway: float = 0.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._seconds = seconds
        self._max_entries = max_entries
        self._leeway = leeway
        self._clock = clock
        self._entries: OrderedDict[bytes, tuple[float, dict[str, Any]]] = OrderedDict()

    @staticmethod
    def _key(token: str) -> bytes:
        return hashlib.sha256(token.encode()).digest()

    def get(self, token: str) -> dict[str, Any] | None:
        """The claims of `token` if it was verified recently and has not expired since."""
        key = self._key(token)
        entry = self._entries.get(key)
        if entry is None:
            return None
        good_until, claims = entry
        if self._clock() >= good_until:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return dict(claims)  # a copy: no request can change what the next one is handed

    def keep(self, token: str, claims: dict[str, Any]) -> None:
        """Remember a token that passed every check, until its expiry or `seconds` from now."""
        if self._seconds <= 0:
            return
        now = self._clock()
        good_until = min(now + self._seconds, float(claims["exp"]) + self._leeway)
        if good_until <= now:
            return
        self._entries[self._key(token)] = (good_until, claims)
        self._entries.move_to_end(self._key(token))
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
