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

    __slots__ = ("_callback", "_handle", "_loop", "_when")

    def __init__(self, loop: asyncio.AbstractEventLoop, callback: Callable[[], object]) -> None:
        self._loop = loop
        self._callback = callback
        self._when: float | None = None
        self._handle: asyncio.TimerHandle | None = None

    @property
    def armed(self) -> bool:
        return self._when is not None

    def arm(self, delay: float | None) -> None:
        """Move the deadline to `delay` seconds from now; `None` cancels it."""
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
        self._when = None

    def close(self) -> None:
        """Cancel for good, releasing the loop's timer (and what its callback holds) now."""
        self._when = None
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
