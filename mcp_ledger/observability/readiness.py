"""Readiness: whether this process can serve a request right now, and why not.

`GET /readyz` answers 200 when the bus is running, the event store answers a query and the
state store answers a read, each within a short timeout; otherwise 503 with one reason per
failing part. Liveness (`/healthz`) stays a plain "the process answers" elsewhere: a
dependency outage must take a replica out of the load balancer, not restart it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

log = logging.getLogger(__name__)

Probe = Callable[[], Awaitable[object]]
PROBE_TIMEOUT = 2.0


@dataclass
class Readiness:
    """Named probes plus flags; ready when every flag is up and every probe answers in time."""

    probes: dict[str, Probe] = field(default_factory=dict)
    flags: dict[str, Callable[[], bool]] = field(default_factory=dict)
    timeout: float = PROBE_TIMEOUT
    details: dict[str, Callable[[], object]] = field(default_factory=dict)
    """Informational parts of the answer (e.g. upstream breaker counts): never make it 503."""

    async def problems(self) -> dict[str, str]:
        """Part name -> why it is not ready; empty when ready."""
        found = {name: "not running" for name, up in self.flags.items() if not up()}
        names = list(self.probes)
        outcomes = await asyncio.gather(*(self._probe(self.probes[n]) for n in names))
        found.update({name: problem for name, problem in zip(names, outcomes, strict=True) if problem})
        return found

    async def _probe(self, probe: Probe) -> str:
        try:
            async with asyncio.timeout(self.timeout):
                await probe()
        except TimeoutError:
            return f"no answer within {self.timeout:.0f}s"
        except Exception as error:  # boundary: any failure of a dependency means "not ready"
            return f"{type(error).__name__}: {error}"[:300]
        return ""

    def _details(self) -> dict[str, object]:
        found = {name: detail() for name, detail in self.details.items()}
        return {name: value for name, value in found.items() if value is not None}

    def route(self) -> Route:
        async def readyz(request: Request) -> JSONResponse:
            problems = await self.problems()
            if problems:
                log.warning("not ready: %s", problems)
                body = {"status": "unavailable", "problems": problems, **self._details()}
                return JSONResponse(body, status_code=503)
            checked = sorted([*self.flags, *self.probes])
            return JSONResponse({"status": "ready", "checked": checked, **self._details()})

        return Route("/readyz", readyz, methods=["GET"])
