"""A connection's deadline: re-armed on every request, but rarely allowed to reach the event loop's timers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class Deadline:
    """Calls `callback` once `delay` seconds pass after the latest `arm`, unless `cancel` comes first.

    A keep-alive connection moves its deadline twice per request (the head deadline, then the idle one). Doing
    that with `call_later` and `cancel` costs two timer handles per request; here the loop's timer is left
    in place when the new deadline is later than it, and when it fires early it is set again for what is left.
    So a busy connection touches the loop's timers about once per timeout, not twice per request.
    """

    __slots__ = ("_callback", "_handle", "_loop", "_queue", "_when")

    def __init__(self, loop: asyncio.AbstractEventLoop, callback: Callable[[], object]) -> None:
        self._loop = loop
        self._callback = callback
        self._when: float | None = None
        self._handle: asyncio.TimerHandle | None = None
        #: Set while the deadline waits in a `DeadlineQueue` (`arm_in`) rather than on a timer of its own.
        self._queue: DeadlineQueue | None = None

    @property
    def armed(self) -> bool:
        return self._when is not None or self._queue is not None

    def arm_in(self, queue: DeadlineQueue) -> None:
        """Like `arm(queue.delay)`, on the queue's timer: for the deadline a connection gets as it is made, which
        its first bytes usually cancel a moment later. `arm`, `cancel` and `close` take it out of the queue."""
        self.cancel()
        self._queue = queue
        queue.add(self)

    def arm(self, delay: float | None) -> None:
        """Move the deadline to `delay` seconds from now; `None` cancels it."""
        if self._queue is not None:
            self._leave_queue()
        if delay is None:
            self._when = None
            return
        when = self._loop.time() + delay
        self._when = when
        handle = self._handle
        if handle is not None:
            if handle.when() <= when:
                return  # it fires first and sets itself again for the rest
            handle.cancel()
        self._handle = self._loop.call_at(when, self._fire)

    def cancel(self) -> None:
        """The deadline no longer applies; the loop's timer, if any, fires later and does nothing."""
        if self._queue is not None:
            self._leave_queue()
        self._when = None

    def close(self) -> None:
        """Cancel for good, releasing the loop's timer and the callback now. The callback is usually a method of
        the connection that holds this deadline: kept, the two would make a reference cycle that only the
        garbage collector frees, one per closed connection (with `Connection: close` clients, 6% of the CPU)."""
        if self._queue is not None:
            self._leave_queue()
        self._when = None
        self._callback = _closed
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _fire(self) -> None:
        self._handle = None
        when = self._when
        if when is None:
            return
        if self._loop.time() < when:
            self._handle = self._loop.call_at(when, self._fire)
            return
        self._when = None
        self._callback()

    def _leave_queue(self) -> None:
        queue, self._queue = self._queue, None
        if queue is not None:
            queue.discard(self)

    def _due(self) -> None:
        """Called by the queue the deadline waited in, when its time has come."""
        self._queue = None
        self._callback()


def _closed() -> None:
    """A closed deadline's callback: nothing is left to call."""


class DeadlineQueue:
    """Deadlines of one fixed delay, all on one loop timer.

    Every new connection gets a deadline for its first request head, and a client that sends one at once cancels
    it a moment later: with `Connection: close` clients, once per request. A loop timer for each cost 6k
    instructions a connection more than waiting here (bench/instructions.py); here the deadlines wait in the order they were set, which
    is the order they fall due as they share one delay, and the loop's timer is set for the earliest only.
    Cancelling takes a deadline out at once, so nothing it holds is kept past it.
    """

    __slots__ = ("_handle", "_waiting", "delay", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop, delay: float) -> None:
        self.loop = loop
        self.delay = delay
        #: Each waiting deadline and when it falls due, in that order (dicts keep insertion order).
        self._waiting: dict[Deadline, float] = {}
        self._handle: asyncio.TimerHandle | None = None

    def __len__(self) -> int:
        return len(self._waiting)

    def add(self, deadline: Deadline) -> None:
        when = self.loop.time() + self.delay
        self._waiting[deadline] = when
        if self._handle is None:
            self._handle = self.loop.call_at(when, self._fire)

    def discard(self, deadline: Deadline) -> None:
        self._waiting.pop(deadline, None)

    def _fire(self) -> None:
        self._handle = None
        now = self.loop.time()
        due: list[Deadline] = []
        for deadline, when in self._waiting.items():
            if when > now:
                self._handle = self.loop.call_at(when, self._fire)
                break
            due.append(deadline)
        for deadline in due:
            del self._waiting[deadline]
        for deadline in due:
            deadline._due()  # noqa: SLF001 - the queue's half of Deadline's protocol
