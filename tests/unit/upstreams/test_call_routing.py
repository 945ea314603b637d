"""Which call an upstream's notification belongs to (relay/routing.py): the call marked on the
running context, else the only call in flight, else none; never a call that has ended."""

from __future__ import annotations

import asyncio
import contextvars

from mcp_ledger.consumers.upstreams.relay.routing import CallSinks, InFlightCalls, outside_every_call


def test_a_callback_in_a_call_s_context_belongs_to_that_call_even_with_others_in_flight() -> None:
    calls, first, second = InFlightCalls(), CallSinks(), CallSinks()
    with calls.call(first):
        seen_in_first = contextvars.copy_context()  # what the SDK hands the callbacks of its request
        with calls.call(second):
            assert seen_in_first.run(calls.owner) is first
            assert calls.owner() is second


def test_a_callback_outside_every_call_goes_to_the_only_call_and_to_none_of_several() -> None:
    calls, first, second = InFlightCalls(), CallSinks(), CallSinks()
    outside = contextvars.copy_context()
    with calls.call(first):
        assert outside.run(calls.owner) is first
        with calls.call(second):
            assert outside.run(calls.owner) is None
    assert outside.run(calls.owner) is None
    assert len(calls) == 0


def test_a_call_that_ended_gets_nothing_late() -> None:
    calls, first, other = InFlightCalls(), CallSinks(), CallSinks()
    with calls.call(first):
        late = contextvars.copy_context()
    with calls.call(other):
        assert late.run(calls.owner) is None


async def test_a_connection_s_owner_task_started_inside_a_call_is_outside_every_call() -> None:
    calls, opener, other = InFlightCalls(), CallSinks(), CallSinks()

    async def owner_task() -> object:
        outside_every_call()
        await asyncio.sleep(0)
        return calls.owner()

    with calls.call(opener), calls.call(other):
        task = asyncio.create_task(owner_task())  # inherits the opening call's mark
        assert await task is None
