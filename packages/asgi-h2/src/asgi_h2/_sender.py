"""The send side of one HTTP/2 connection: what the streams send (heads, data, flow-control credit back to the
peer) handed to h2, and h2's bytes onto the wire.

Streams hold what the peer's flow-control windows do not yet admit (`_stream`) and say so (`want_send`). What
the connection's streams produce in one pass of the event loop leaves in one write (`schedule`), and the
streams share the connection fairly: each sends at most one frame per round (`pump`). A response in one piece
that the windows admit whole skips all that: its frames are made at once (`_frames`) and held, behind what h2
had queued before them, for the same write. While the transport is
above its write high-water mark nothing more is produced, and the send deadline (`_stall`) limits how long a
stream or the whole connection may make no progress.

Hot module: this code runs for every frame (its speed tricks: docs/discussion/design.md, "Speed").
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from asgi_core import Address, Headers
from h2.errors import ErrorCodes
from h2.exceptions import ProtocolError

from ._frames import whole_response
from ._stall import SendDeadlines

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._protocol import H2Protocol
    from ._stream import OutboundStream


class Sender:
    """A connection's outgoing frames and their way onto its transport; `stop` once the connection is closed."""

    __slots__ = (
        "_abort",
        "_client",
        "_deadlines",
        "_forget",
        "_held",
        "_held_size",
        "_loop",
        "_protocol",
        "_soon",
        "sending",
        "stopped",
    )

    def __init__(
        self,
        protocol: H2Protocol,
        loop: asyncio.AbstractEventLoop,
        client: Address | None,
        *,
        forget: Callable[[OutboundStream], None],
        abort: Callable[[], None],
    ) -> None:
        #: Whose h2 connection, transport and flow control this sends through (all set before the sender).
        self._protocol = protocol
        self._loop = loop
        self._client = client
        #: The protocol's: the stream is over, drop it from the connection.
        self._forget = forget
        #: The protocol's: the send deadline passed with the write buffer full.
        self._abort = abort
        #: The streams holding data or an end to send, by id, in the order they asked.
        self.sending: dict[int, OutboundStream] = {}
        self._soon: asyncio.Handle | None = None
        #: Bytes made outside h2 (`send_whole`) and what h2 had queued before them, in wire order, for `flush`.
        self._held: list[bytes] = []
        self._held_size = 0
        self.stopped = False
        self._deadlines: SendDeadlines | None = None  # made when the connection first stalls

    def send_headers(self, stream: OutboundStream, headers: Headers, *, end_stream: bool) -> None:
        if self.stopped:
            return
        try:
            self._protocol.conn.send_headers(stream.stream_id, headers, end_stream=end_stream)
        except ProtocolError as exc:  # the stream ended under us (a reset crossing our response)
            self._protocol.context.logger.debug("HTTP/2 stream %d: headers not sent: %s", stream.stream_id, exc)
            stream.reset(ErrorCodes.INTERNAL_ERROR)
            return
        self.schedule()

    def send_whole(self, stream: OutboundStream, head: Headers, body: bytes) -> bool:
        """A response in one piece, END_STREAM included, if the peer's windows admit all of it now and the
        transport takes writes: True once it is on its way (or the stream was reset instead, h2 having found
        it closed), False with nothing done, for the stream's own path."""
        if self.stopped or self._protocol.flow.write_paused:
            return False
        conn = self._protocol.conn
        try:
            frames = whole_response(conn, stream.stream_id, head, body)
        except ProtocolError as exc:  # the stream ended under us (a reset crossing our response)
            self._protocol.context.logger.debug("HTTP/2 stream %d: response not sent: %s", stream.stream_id, exc)
            stream.reset(ErrorCodes.INTERNAL_ERROR)
            return True
        if frames is None:
            return False
        held = self._held
        queued = conn.data_to_send()  # h2's frames so far go first, as they would have
        if queued:
            held.append(queued)
        held.append(frames)
        self._held_size += len(frames)
        if self._held_size >= self._protocol.config.write_buffer_high_water:
            # As `pump` does: a round stops producing once the transport is full, not past it.
            self.flush()
        else:
            self.schedule()
        return True

    def acknowledge(self, stream_id: int, size: int) -> None:
        """Give `size` bytes of flow-control credit back to the peer (for the stream while it is open)."""
        if size <= 0 or self.stopped:
            return
        try:
            self._protocol.conn.acknowledge_received_data(size, stream_id)
        except ProtocolError:
            return
        self.schedule()

    def want_send(self, stream: OutboundStream) -> None:
        self.sending[stream.stream_id] = stream
        self.schedule()

    def schedule(self) -> None:
        """Send soon: everything the streams produce in one pass of the event loop leaves in one write."""
        if self._soon is None and not self.stopped:
            self._soon = self._loop.call_soon(self._send_soon)

    def flush(self) -> None:
        """Write what h2 holds, after the frames held here."""
        protocol = self._protocol
        data = protocol.conn.data_to_send()
        held = self._held
        if held:
            held.append(data)
            data = b"".join(held)
            held.clear()
            self._held_size = 0
        if data and not protocol.transport.is_closing():
            protocol.transport.write(data)

    def pump(self) -> None:
        """Move held stream data into DATA frames, one frame per stream per round, while windows allow.

        A round that has produced the high-water mark's worth is written out at once: if that fills the
        transport, the round stops there (rather than adding a frame per stream past the mark) and the streams
        it served move to the back, so the next round starts with those it did not reach."""
        sending = self.sending
        flow = self._protocol.flow
        high = self._protocol.config.write_buffer_high_water
        while sending and not flow.write_paused and not self.stopped:
            progress = False
            produced = 0
            streams = list(sending.values())
            for index, stream in enumerate(streams):
                try:
                    sent = stream.pump()
                except ProtocolError as exc:
                    self._protocol.context.logger.debug("HTTP/2 stream %d: cannot send: %s", stream.stream_id, exc)
                    self._forget(stream)
                    stream.cut()
                    continue
                if not stream.has_work:
                    sending.pop(stream.stream_id, None)
                if sent:
                    progress = True
                    produced += sent
                    if produced >= high:
                        self.flush()
                        produced = 0
                        if flow.write_paused:
                            for served in streams[: index + 1]:
                                if sending.pop(served.stream_id, None) is not None:
                                    sending[served.stream_id] = served
                            return
            if not progress:
                return
            self.flush()

    # ---- the send deadline ---------------------------------------------------------------------------

    def stream_stalled(self, stream: OutboundStream) -> None:
        """`stream` holds data that the peer's windows admit none of: its send deadline starts."""
        self._send_deadlines().stream_stalled(stream)

    def writes_paused(self) -> None:
        self._send_deadlines().writes_paused()

    def writes_resumed(self) -> None:
        if self._deadlines is not None:
            self._deadlines.writes_resumed()

    def stop(self) -> None:
        """The connection is closed: nothing more is produced; the write deadline stays, for a close that
        cannot drain."""
        self.stopped = True
        if self._deadlines is not None:
            self._deadlines.connection_closed()

    def connection_lost(self) -> None:
        self.stop()
        self.sending.clear()
        self._held.clear()
        if self._soon is not None:
            self._soon.cancel()
            self._soon = None
        if self._deadlines is not None:
            self._deadlines.connection_lost()

    def _send_deadlines(self) -> SendDeadlines:
        deadlines = self._deadlines
        if deadlines is None:
            deadlines = self._deadlines = SendDeadlines(
                self._loop,
                self._protocol.send_timeout,
                self._protocol.context.logger,
                self._client,
                sending=self.sending.values,
                abort=self._abort,
            )
        return deadlines

    def _send_soon(self) -> None:
        self._soon = None
        if self.stopped:
            return
        self.pump()
        self.flush()
