"""Bounds on what one HTTP/3 connection's peer can make the server hold or do."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._request import RequestStream


@dataclass(frozen=True, slots=True)
class H3Limits:
    """Per-connection limits; `None` for a field means "from the server's `Config`" where one applies."""

    #: Request streams the peer may have open at once (QUIC initial_max_streams_bidi); None: the Config's
    #: `http2_max_concurrent_streams`, the same bound as for HTTP/2.
    max_concurrent_streams: int | None = None
    #: Apps of a connection that may wait for a task slot (a reset stream's app runs on for the disconnect
    #: grace, and QUIC frees its stream slot at once): beyond this the peer is flooding and is disconnected.
    max_pending_streams: int = 100
    #: Streams the peer may reset within `reset_window` seconds before the connection is closed
    #: (H3_EXCESSIVE_LOAD): the HTTP/3 form of HTTP/2's Rapid Reset.
    max_resets: int = 200
    reset_window: float = 10.0
    #: The largest decoded request field section, in RFC 9114 section 4.2.2's measure: 431 beyond it.
    max_field_section_size: int = 65536
    #: QUIC's idle timeout (RFC 9000 section 10.1): a connection with no packet for this long is gone.
    idle_timeout: float = 30.0
    #: The QUIC receive windows offered, per stream and for the connection (aioquic doubles them as they fill).
    max_stream_data: int = 256 * 1024
    max_data: int = 1024 * 1024
    #: Seconds a response (or tunnel) stream may wait with no byte acknowledged by the client before it is
    #: reset; None: the Config's `send_timeout`, the same bound as for HTTP/2.
    send_timeout: float | None = None
    #: Validate each client's address with a Retry packet before any connection state is kept (RFC 9000
    #: section 8.1): one more round trip per connection, against floods of Initial packets from spoofed
    #: addresses.
    retry: bool = False

    def __post_init__(self) -> None:
        for name in ("max_pending_streams", "max_resets", "max_field_section_size", "max_stream_data", "max_data"):
            if getattr(self, name) < 1:
                raise ValueError(f"H3Limits.{name} must be at least 1, got {getattr(self, name)!r}")
        if self.max_concurrent_streams is not None and self.max_concurrent_streams < 1:
            raise ValueError(
                f"H3Limits.max_concurrent_streams must be at least 1, got {self.max_concurrent_streams!r}"
            )
        for name in ("reset_window", "idle_timeout", "send_timeout"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"H3Limits.{name} must be a positive number of seconds, got {value!r}")


class ResetCounter:
    """Counts events in a sliding window; `add` says whether the count is still within `limit`."""

    __slots__ = ("_limit", "_times", "_window")

    def __init__(self, limit: int, window: float) -> None:
        self._limit = limit
        self._window = window
        self._times: deque[float] = deque()

    def add(self) -> bool:
        now = time.monotonic()
        times = self._times
        times.append(now)
        while times and times[0] < now - self._window:
            times.popleft()
        return len(times) <= self._limit


class Admission:
    """When an admitted request's app starts: at once, unless `limit` app tasks of the connection still run."""

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

    @property
    def running(self) -> int:
        return len(self._tasks)

    def admit(self, stream: RequestStream) -> bool:
        """Start the stream's app, or queue it; False when too many wait already."""
        if len(self._tasks) < self._limit:
            self._start(stream)
        elif len(self._waiting) < self._max_waiting:
            self._waiting.append(stream)
        else:
            return False
        return True

    def withdraw(self, stream: RequestStream) -> None:
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
            self._logger.error("HTTP/3 request task failed", exc_info=task.exception())
        while self._waiting and len(self._tasks) < self._limit:
            stream = self._waiting.popleft()
            if not stream.closed:
                self._start(stream)
