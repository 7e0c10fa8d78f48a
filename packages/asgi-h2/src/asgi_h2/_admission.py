"""When an admitted request's app starts: at once, unless `http2_max_concurrent_streams` app tasks still run.

The tasks of reset streams keep running for the disconnect grace period, which is what Rapid Reset
(CVE-2023-44487) exploits: a peer opening and resetting streams would otherwise have the server run any number
of apps at once. So a request beyond the running tasks waits for a slot, and more than
`H2Limits.max_pending_streams` waiting is abuse, which the protocol answers by ending the connection.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque

from ._request import RequestStream


class Admission:
    __slots__ = ("_limit", "_logger", "_loop", "_max_waiting", "_tasks", "_waiting")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, logger: logging.Logger, limit: int, max_waiting: int
    ) -> None:
        self._loop = loop
        self._logger = logger
        self._limit = limit
        self._max_waiting = max_waiting
        self._tasks: set[asyncio.Task[None]] = set()
        self._waiting: deque[RequestStream] = deque()

    def admit(self, stream: RequestStream) -> bool:
        """Start the stream's app, or queue it; False when too many wait already."""
        if len(self._tasks) < self._limit:
            self._start(stream)
        elif len(self._waiting) < self._max_waiting:
            self._waiting.append(stream)
        else:
            return False
        return True

    def is_waiting(self, stream: RequestStream) -> bool:
        return stream in self._waiting

    def withdraw(self, stream: RequestStream) -> None:
        """The stream ended before its app started."""
        if stream in self._waiting:
            self._waiting.remove(stream)

    def clear(self) -> None:
        self._waiting.clear()

    def _start(self, stream: RequestStream) -> None:
        cycle = stream.cycle
        assert cycle is not None  # noqa: S101 - set before admission
        task = self._loop.create_task(cycle.run())
        cycle.task = task
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._logger.error("HTTP/2 request task failed", exc_info=task.exception())
        while self._waiting and len(self._tasks) < self._limit:
            self._start(self._waiting.popleft())
