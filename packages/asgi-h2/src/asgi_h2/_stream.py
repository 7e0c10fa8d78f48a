"""The sending half of one stream: bytes held until the peer's flow-control windows admit them.

RFC 9113 section 5.2: nothing but HEADERS-type frames may exceed the peer's windows, one per stream and one
for the connection, which it opens with WINDOW_UPDATE as it consumes what it got. An app can produce faster
than that, so each stream keeps what the windows do not yet admit, and a sender waits (`wait_writable`) while
more than the write high-water mark is held: memory per stream stays bounded by that mark plus the last
chunk the app handed over. The protocol moves the held bytes onto the wire (`pump`, one frame per stream per
round, so streams share the connection fairly) whenever windows open or the transport drains, and sends the
END_STREAM flag or the trailers once everything before them has gone.

Lifecycle: OPEN (sending) -> ENDING (end requested, data still held) -> ENDED (END_STREAM or trailers sent);
any state -> CLOSED when the stream is reset or the connection is lost. `closed` is true for ENDED and
CLOSED: from then on the stream ignores whatever its user still sends.

Hot module: this code runs for every DATA frame (its speed tricks: docs/discussion/design.md, "Speed").
"""

from __future__ import annotations

import asyncio
import enum
from collections import deque
from typing import TYPE_CHECKING

from asgi_core import Headers
from h2.errors import ErrorCodes

if TYPE_CHECKING:
    from ._protocol import H2Protocol


class StreamState(enum.Enum):
    OPEN = "open"
    ENDING = "ending"
    ENDED = "ended"
    CLOSED = "closed"


class OutboundStream:
    """One stream's outgoing data and end; subclasses add what the stream is for."""

    __slots__ = (
        "_chunks",
        "_trailers",
        "_waiter",
        "buffered",
        "peer_ended",
        "protocol",
        "stalled_since",
        "state",
        "stream_id",
    )

    def __init__(self, protocol: H2Protocol, stream_id: int) -> None:
        self.protocol = protocol
        self.stream_id = stream_id
        self.state = StreamState.OPEN
        self.buffered = 0
        self.peer_ended = False
        #: When the windows last admitted none of the held data (None while the stream moves): see `_stall`.
        self.stalled_since: float | None = None
        self._chunks: deque[memoryview] = deque()
        self._trailers: Headers | None = None
        self._waiter: asyncio.Future[None] | None = None

    @property
    def closed(self) -> bool:
        return self.state in (StreamState.ENDED, StreamState.CLOSED)

    @property
    def has_work(self) -> bool:
        return bool(self._chunks) or self.state is StreamState.ENDING

    # ---- what the stream's user does -----------------------------------------------------------------

    def queue(self, data: bytes) -> None:
        if self.state is not StreamState.OPEN or not data:
            return
        self._chunks.append(memoryview(data))  # slices of a view are free: a big body is not copied per frame
        self.buffered += len(data)
        self.protocol.sender.want_send(self)

    def finish(self, trailers: Headers | None = None) -> None:
        """End the stream once the held data has gone, with trailers if given."""
        if self.state is not StreamState.OPEN:
            return
        self.state = StreamState.ENDING
        self._trailers = trailers
        self.protocol.sender.want_send(self)

    async def wait_writable(self) -> None:
        """Return once this stream holds no more than the high-water mark and the transport takes writes."""
        high = self.protocol.config.write_buffer_high_water
        while not self.closed:
            if self.buffered > high:
                if self._waiter is None:
                    self._waiter = asyncio.get_running_loop().create_future()
                await asyncio.shield(self._waiter)
            elif self.protocol.flow.write_paused:
                await self.protocol.flow.drain()
            else:
                return

    # ---- what the protocol does ----------------------------------------------------------------------

    def pump(self) -> int:
        """Send at most one frame: the bytes of data it carried (1 for an end without data), 0 if none went."""
        conn = self.protocol.conn
        if self._chunks:
            window = conn.local_flow_control_window(self.stream_id)
            size = min(window, conn.max_outbound_frame_size, self.buffered)
            if size <= 0:
                if self.stalled_since is None:
                    self.protocol.sender.stream_stalled(self)
                return 0
            self.stalled_since = None
            data = self._take(size)
            end = self.state is StreamState.ENDING and not self._chunks and self._trailers is None
            conn.send_data(self.stream_id, data, end_stream=end)
            if self.buffered <= self.protocol.config.write_buffer_high_water // 2:
                self._wake()
                self.on_writable()
            if end:
                self.mark_ended()
            return size
        if self.state is StreamState.ENDING:
            if self._trailers:
                conn.send_headers(self.stream_id, self._trailers, end_stream=True)
            else:
                conn.end_stream(self.stream_id)
            self.mark_ended()
            return 1
        return 0

    def reset(self, error_code: ErrorCodes) -> None:
        """Abandon the stream with RST_STREAM (we decided it cannot complete)."""
        if self.closed:
            return
        self.protocol.reset_stream(self.stream_id, error_code)
        self.cut()

    def cut(self) -> None:
        """The stream is over without a proper end (reset either way, or the connection lost)."""
        if self.state is StreamState.CLOSED:
            return
        was_ended = self.state is StreamState.ENDED
        self.state = StreamState.CLOSED
        self._chunks.clear()
        self.buffered = 0
        self._wake()
        if not was_ended:
            self.on_closed()

    def awaits_peer_end(self) -> bool:
        """Whether the stream, ended on our side, stays until the peer ends its side too (a tunnel)."""
        return False

    def on_writable(self) -> None:
        """What the stream holds fell below the low-water mark."""

    def on_ended(self) -> None:
        """END_STREAM (or the trailers) went out: the subclass's response or tunnel is complete."""

    def on_closed(self) -> None:
        """The stream was cut before it ended: tell the subclass's user."""

    # ---- internals -----------------------------------------------------------------------------------

    def mark_ended(self) -> None:
        """END_STREAM went out (in a DATA frame, the trailers, or a HEADERS frame of a bodyless response)."""
        self.state = StreamState.ENDED
        self._wake()
        self.on_ended()
        self.protocol.stream_done(self)

    def _take(self, size: int) -> bytes:
        chunks = self._chunks
        first = chunks[0]
        if len(first) >= size:
            if len(first) == size:
                chunks.popleft()
            else:
                chunks[0] = first[size:]
            self.buffered -= size
            return bytes(first[:size])
        pieces: list[memoryview] = []
        taken = 0
        while chunks and taken + len(chunks[0]) <= size:
            piece = chunks.popleft()
            pieces.append(piece)
            taken += len(piece)
        if chunks and taken < size:
            rest = size - taken
            pieces.append(chunks[0][:rest])
            chunks[0] = chunks[0][rest:]
            taken = size
        self.buffered -= taken
        return b"".join(pieces)

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
