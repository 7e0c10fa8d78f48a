"""One coroutine waiting for news that other code brings: the app's `receive()` waiting for body or a message.

Hot module: a request that reads its body waits here (its speed tricks: docs/discussion/design.md, "Speed").
"""

from __future__ import annotations

import asyncio


class Wakeup:
    """`await wakeup.wait()` returns once `wake()` is called after it began; a `wake()` with nobody waiting is
    dropped, so the waiter must check what it waits for before each `wait()` (a loop, as `receive()` is)."""

    __slots__ = ("_waiter",)

    def __init__(self) -> None:
        self._waiter: asyncio.Future[None] | None = None

    async def wait(self) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
