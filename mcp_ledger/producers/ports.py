"""The message bus port: keyed topics, per-key order, at-least-once delivery.

Two subscription kinds: a *group* subscription shares the topic's partitions among the
members of the group (competing consumers, each message handled by one member), a
*broadcast* subscription (group=None) sees every message published after it started.
A handler that raises gets the message again (at-least-once); handlers must be idempotent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Message:
    """One message as delivered to a handler."""

    topic: str
    key: str
    value: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


Handler = Callable[[Message], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message of a batch to publish to one topic."""

    key: str
    value: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


class MessageBus(Protocol):
    """Publish keyed messages and subscribe handlers to topics."""

    async def start(self) -> None:
        """Connect and start every subscription registered so far; returns when they are
        ready to receive (a broadcast subscription sees everything published after this)."""
        ...

    async def stop(self) -> None:
        """Stop subscriptions (letting in-flight handlers finish) and disconnect."""
        ...

    def subscribe(
        self, topic: str, handler: Handler, *, group: str | None, concurrency: int = 1, in_flight: int = 1
    ) -> None:
        """Register a handler before start(). Messages with the same key are handled in
        order. A group subscription has `concurrency` members, each owning some partitions;
        with `in_flight` 1 a member handles one message at a time, with more it handles up
        to that many of different keys at once (so a slow message holds back only its key)."""
        ...

    async def publish(
        self, topic: str, key: str, value: bytes, headers: Mapping[str, str] | None = None
    ) -> None:
        """Publish one message; returns once the bus has durably accepted it.

        Raises:
            BusError: the message could not be published.
        """
        ...

    async def publish_many(self, topic: str, messages: Sequence[Outgoing]) -> None:
        """Publish messages in order, as consecutive publish() calls would, but without waiting
        for each before sending the next; returns once the bus has durably accepted all of them.

        Raises:
            BusError: a message could not be published (some of the others may have been).
        """
        ...


class BusError(Exception):
    """A message could not be published or a subscription could not start."""
