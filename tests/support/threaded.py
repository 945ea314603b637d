"""An embedded gateway on its own event loop in a background thread, for synchronous tests
(hypothesis drives examples synchronously; the gateway must keep serving between them)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from mcp_ledger.settings import Settings
from tests.support.embedded import RunningGateway, gateway

START_SECONDS = 30.0


@dataclass
class _Thread:
    started: threading.Event = field(default_factory=threading.Event)
    running: RunningGateway | None = None
    loop: asyncio.AbstractEventLoop | None = None
    stop: asyncio.Event | None = None
    error: BaseException | None = None


@contextmanager
def threaded_gateway(settings: Settings) -> Iterator[RunningGateway]:
    """Run API and worker in a thread until the block ends.

    Raises:
        RuntimeError: the gateway did not start in time, or failed.
    """
    state = _Thread()

    async def serve() -> None:
        state.loop, state.stop = asyncio.get_running_loop(), asyncio.Event()
        async with gateway(settings) as running:
            state.running = running
            state.started.set()
            await state.stop.wait()

    def main() -> None:
        try:
            asyncio.run(serve())
        except BaseException as error:  # handed to the test thread
            state.error = error
            state.started.set()

    thread = threading.Thread(target=main, name="gateway", daemon=True)
    thread.start()
    if not state.started.wait(START_SECONDS) or state.running is None:
        raise RuntimeError("the gateway did not start") from state.error
    try:
        yield state.running
    finally:
        if state.loop is not None and state.stop is not None:
            state.loop.call_soon_threadsafe(state.stop.set)
        thread.join(START_SECONDS)
    if state.error is not None:
        raise RuntimeError("the gateway failed while serving") from state.error
