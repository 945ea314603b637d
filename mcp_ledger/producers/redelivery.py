"""Redelivery of a message whose handler failed: the backoff schedule both buses share.

Owns how long to wait before the next attempt and the retry-until-success loop of the
in-process bus and of Kafka broadcast consumers. Does not own where a message comes from or
how its progress is committed (each adapter does that).
"""

from __future__ import annotations

import asyncio
import logging

from mcp_ledger.producers.ports import Handler, Message

_log = logging.getLogger(__name__)

FIRST_RETRY_DELAY = 0.01
MAX_RETRY_DELAY = 1.0


def retry_delay(failures: int) -> float:
    """Seconds to wait before redelivering a message that has failed `failures` times in a row."""
    return min(FIRST_RETRY_DELAY * 2.0 ** (failures - 1), MAX_RETRY_DELAY)


async def deliver(handler: Handler, message: Message, slots: asyncio.Semaphore) -> None:
    """Call `handler` with `message` until it succeeds, backing off between attempts.

    A slot is held only while the handler runs, so a message waiting for its retry does not
    keep other partitions from being handled.
    """
    failures = 0
    while True:
        async with slots:
            try:
                await handler(message)
            except Exception:
                failures += 1
                _log.exception(
                    "handler failed on %s key %r (failure %d); redelivering",
                    message.topic,
                    message.key,
                    failures,
                )
            else:
                return
        await asyncio.sleep(retry_delay(failures))
