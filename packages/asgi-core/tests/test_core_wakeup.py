"""`Wakeup`: a waiting coroutine resumes on `wake()`; a `wake()` nobody waits for is not kept for later."""

from __future__ import annotations

import asyncio

import pytest
from asgi_core import Wakeup


async def _resumes_after_wake() -> None:
    wakeup = Wakeup()
    waiter = asyncio.ensure_future(wakeup.wait())
    await asyncio.sleep(0)
    assert not waiter.done()
    wakeup.wake()
    await asyncio.wait_for(waiter, 1)


async def _early_wake_is_dropped() -> None:
    wakeup = Wakeup()
    wakeup.wake()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(wakeup.wait(), 0.05)


async def _cancelled_wait_leaves_it_reusable() -> None:
    wakeup = Wakeup()
    first = asyncio.ensure_future(wakeup.wait())
    await asyncio.sleep(0)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    wakeup.wake()  # nobody waits: must not fail on the cancelled future
    second = asyncio.ensure_future(wakeup.wait())
    await asyncio.sleep(0)
    wakeup.wake()
    await asyncio.wait_for(second, 1)


def test_a_waiting_coroutine_resumes_on_wake() -> None:
    asyncio.run(_resumes_after_wake())


def test_a_wake_before_anyone_waits_is_dropped() -> None:
    asyncio.run(_early_wake_is_dropped())


def test_a_cancelled_wait_leaves_it_ready_for_the_next() -> None:
    asyncio.run(_cancelled_wait_leaves_it_reusable())
