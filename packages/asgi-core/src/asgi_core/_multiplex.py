"""The streams of a multiplexed connection (HTTP/2 on h2, HTTP/3 on aioquic): how each opens, and the limits
that keep one peer from making the server run any number of apps.

A stream carries a request for the app (`stream_cycle`), or, opened by an extended CONNECT (RFC 8441 on
HTTP/2, RFC 9220 on HTTP/3), a tunnel for the protocol registered under its `:protocol` token
(`tunnel_upgrade`). What a stream is on the wire stays with each protocol; these rules are the same on both:

- `Admission` decides when a request's app starts. The tasks of reset streams keep running for the disconnect
  grace period, which is what Rapid Reset (CVE-2023-44487) exploits: a peer opening and resetting streams
  would otherwise have the server run any number of apps at once. So a request beyond the running tasks
  waits for a slot, and too many waiting is abuse, which the protocol answers by ending the connection.
- `WindowCounter` counts what a peer does that costs work without carrying a request (resets, refused
  streams, control frames) against a limit per window of time.
- `check_limits` validates a protocol's limits dataclass, so that a bad value names the field and the bound.
- `cut_streams` ends every stream of a connection that is over.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar

from ._connection import ConnectionInfo
from ._cycle import RequestCycle
from ._registry import UpgradeHandler, UpgradeRequest
from ._response_writer import ResponseWriter
from ._scope import build_http_scope
from ._stream_fields import RequestHead

if TYPE_CHECKING:
    from ._context import ServerContext


class _Stream(Protocol):
    def cut(self) -> None: ...


_S = TypeVar("_S", bound=_Stream)

#: What the request cycle honours on every multiplexed stream.
_EXTENSIONS: Final[dict[str, Any]] = {
    "http.response.pathsend": {},
    "http.response.early_hint": {},
    "http.response.trailers": {},
}


def stream_cycle(
    writer: ResponseWriter,
    context: ServerContext,
    conn: ConnectionInfo,
    head: RequestHead,
    http_version: str,
    *,
    ended: bool,
) -> RequestCycle:
    """The request cycle of a stream whose request `head` arrived; `ended` if the stream carries no body."""
    scope = build_http_scope(
        conn=conn,
        method=head.method,
        http_version=http_version,
        target=head.path,
        headers=head.headers,
        root_path=context.config.root_path,
        state=context.state,
        extensions=dict(_EXTENSIONS),
    )
    return RequestCycle(scope, writer, context, content_length=head.content_length, body_expected=not ended)


def tunnel_upgrade(
    context: ServerContext, conn: ConnectionInfo, head: RequestHead, http_version: str
) -> tuple[UpgradeHandler, UpgradeRequest] | int:
    """The upgrade handler an extended CONNECT goes to, with the request it accepted; or the status to refuse
    the stream with: 501 when no handler is registered for its `:protocol` (`h2c` never is: it upgrades a
    whole connection), 400 when the handler declines the request."""
    name = (head.protocol or "").lower()
    registry = context.registry
    handler = registry.upgrade(name) if registry is not None and name and name != "h2c" else None
    if handler is None:
        return 501
    request = UpgradeRequest(
        method="CONNECT",
        target=head.path,
        http_version=http_version,
        headers=head.headers,
        conn=conn,
        leftover=b"",
        config=context.config,
    )
    if not handler.accepts(request):
        return 400
    return handler, request


def require_tunnel_answer(*, head_sent: bool, before: str) -> None:
    """A tunnel (an extended CONNECT stream) carries nothing until its protocol has answered the request with
    `send_head` (RFC 8441 section 5, RFC 9220 section 3): using it earlier is the protocol's bug."""
    if not head_sent:
        raise RuntimeError(f"send_head must answer the extended CONNECT before {before}")


def tunnel_takes(data: bytes | bytearray | memoryview, *, ended: bool, head_sent: bool) -> bool:
    """Whether a tunnel's `write` sends `data` on: not once our side of the stream is ended (dropped quietly,
    as an asyncio transport drops writes after `close`), not when empty, and never before the answer."""
    if ended or not data:
        return False
    require_tunnel_answer(head_sent=head_sent, before="any data is written")
    return True


class Admission:
    """When an admitted request's app starts: at once, unless `limit` app tasks of the connection still run;
    then it waits, up to `max_waiting` requests (`admit` is False past that)."""

    __slots__ = ("_label", "_limit", "_logger", "_loop", "_max_waiting", "_tasks", "_waiting")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, logger: logging.Logger, limit: int, max_waiting: int, label: str
    ) -> None:
        #: The app tasks running, and the cycles waiting for one of them to end.
        self._tasks: set[asyncio.Task[None]] = set()
        self._waiting: deque[RequestCycle] = deque()
        self._loop = loop
        self._logger = logger
        self._limit = limit
        self._max_waiting = max_waiting
        #: The protocol's name, for the log.
        self._label = label

    @property
    def running(self) -> int:
        return len(self._tasks)

    def admit(self, cycle: RequestCycle) -> bool:
        """Start the cycle's app, or queue it; False when too many wait already."""
        if len(self._tasks) < self._limit:
            self._start(cycle)
        elif len(self._waiting) < self._max_waiting:
            self._waiting.append(cycle)
        else:
            return False
        return True

    def is_waiting(self, cycle: RequestCycle) -> bool:
        return cycle in self._waiting

    def withdraw(self, cycle: RequestCycle) -> None:
        """The stream ended before its app started."""
        if cycle in self._waiting:
            self._waiting.remove(cycle)

    def clear(self) -> None:
        self._waiting.clear()

    def _start(self, cycle: RequestCycle) -> None:
        task = self._loop.create_task(cycle.run())
        cycle.task = task
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._logger.error("%s request task failed", self._label, exc_info=task.exception())
        while self._waiting and len(self._tasks) < self._limit:
            self._start(self._waiting.popleft())


class WindowCounter:
    """Counts events in fixed windows of time; `hit` says whether the count is still within the limit."""

    __slots__ = ("_count", "_limit", "_started", "_window")

    def __init__(self, limit: int, window: float) -> None:
        self._limit = limit
        self._window = window
        self._count = 0
        self._started = 0.0

    def hit(self, now: float) -> bool:
        if now - self._started >= self._window:
            self._started = now
            self._count = 0
        self._count += 1
        return self._count <= self._limit


def check_limits(limits: object, *, counts: tuple[str, ...], seconds: tuple[str, ...]) -> None:
    """Raise `ValueError` naming the field unless each of `counts` is at least 1 and each of `seconds` is a
    positive number (a field that is None, "not set here", passes)."""
    owner = type(limits).__name__
    for name in counts:
        value = getattr(limits, name)
        if value is not None and value < 1:
            raise ValueError(f"{owner}.{name} must be at least 1, got {value!r}")
    for name in seconds:
        value = getattr(limits, name)
        if value is not None and not value > 0:
            raise ValueError(f"{owner}.{name} must be a positive number of seconds, got {value!r}")


def cut_streams(streams: dict[int, _S]) -> None:
    """The connection is over: every stream in its table is cut (its app told, its tunnel lost). The table is
    emptied first, as a stream's end calls back into the protocol, which must find the stream gone already."""
    cut = list(streams.values())
    streams.clear()
    for stream in cut:
        stream.cut()
