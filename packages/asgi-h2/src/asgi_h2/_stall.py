"""The send deadline of one connection: streams and writes that make no progress end (`H2Limits.send_timeout`).

Flow control lets a peer hold a response at a window of zero for as long as it likes, and a peer that stops
reading the socket holds every write. Memory stays bounded meanwhile (a stream holds at most the high-water mark
plus one app message), but the streams, their apps and the connection would be held forever. So:

- a stream with data to send and no window to send it in for `send_timeout` seconds is reset (CANCEL): its app
  sees `http.disconnect`, and the connection goes on with its other streams;
- a connection whose transport stays above its write high-water mark for `send_timeout` seconds is aborted:
  nothing it writes is being read. This holds after the connection was closed too, since a close waits for
  the write buffer to drain, which such a peer never lets happen.

A stream that moves at all, however slowly, starts its deadline again: this limits stalls, not slow clients.
One timer per connection serves all its streams (each stream remembers when it stalled), and both timers are
`asgi_core.Deadline`s, made only when a connection first stalls.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from asgi_core import Address, Deadline
from h2.errors import ErrorCodes

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from ._stream import OutboundStream


class SendDeadlines:
    __slots__ = ("_client", "_logger", "_loop", "_sending", "_streams", "_timeout", "_writes")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        timeout: float,
        logger: logging.Logger,
        client: Address | None,
        *,
        sending: Callable[[], Iterable[OutboundStream]],
        abort: Callable[[], None],
    ) -> None:
        self._loop = loop
        self._timeout = timeout
        self._logger = logger
        self._client = client
        self._sending = sending
        self._streams = Deadline(loop, self._check_streams)
        self._writes = Deadline(loop, abort)

    def stream_stalled(self, stream: OutboundStream) -> None:
        """`stream` holds data and its windows admit none of it."""
        stream.stalled_since = self._loop.time()
        if not self._streams.armed:
            self._streams.arm(self._timeout)

    def writes_paused(self) -> None:
        self._writes.arm(self._timeout)

    def writes_resumed(self) -> None:
        self._writes.cancel()

    def connection_closed(self) -> None:
        """No stream is left to reset; the write deadline stays, for a close that cannot drain."""
        self._streams.close()

    def connection_lost(self) -> None:
        self._streams.close()
        self._writes.close()

    def _check_streams(self) -> None:
        now = self._loop.time()
        earliest: float | None = None
        for stream in list(self._sending()):
            since = stream.stalled_since
            if since is None:
                continue
            if now - since >= self._timeout:
                self._logger.debug(
                    "HTTP/2 stream %d from %s: no window to send in for %s s, reset",
                    stream.stream_id,
                    self._client,
                    self._timeout,
                )
                stream.reset(ErrorCodes.CANCEL)
            elif earliest is None or since < earliest:
                earliest = since
        if earliest is not None:
            self._streams.arm(earliest + self._timeout - now)
