"""Extended CONNECT (RFC 8441): one HTTP/2 stream carrying another protocol, WebSocket in practice.

The protocol that takes over (found in the registry by the `:protocol` token, as HTTP/1.1 finds it by the
`Upgrade` token) sees an ordinary asyncio transport, an `asgi_core.StreamTransport`: DATA frames arrive
through `data_received`, the peer's END_STREAM through `eof_received`, its RST_STREAM or the connection's end
through `connection_lost`; what it writes leaves as flow-controlled DATA, and it answers the handshake with
`send_head` (a 200 to accept, anything else to refuse).

The mapping follows RFC 8441 section 4: END_STREAM is a TCP FIN, RST_STREAM a TCP RST. So `write_eof` sends
END_STREAM and keeps reading until the peer ends its side too (a half-close, as a WebSocket closing handshake
uses it), while `close` ends our side and, like `asyncio.Transport.close`, stops reading (`connection_lost`
follows at once). The stream then waits up to `LINGER` seconds for the peer's END_STREAM, discarding its data,
so that the usual ending (both sides close in turn) needs no RST_STREAM; a peer that does not end in time is
told to stop with RST_STREAM NO_ERROR.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Final

from asgi_core import Deadline, TunnelInbox, require_tunnel_answer, response_head, tunnel_takes
from h2.errors import ErrorCodes

from ._stream import OutboundStream, StreamState

if TYPE_CHECKING:
    from ._protocol import H2Protocol

#: Seconds a closed tunnel waits for the peer's END_STREAM before resetting the stream.
LINGER: Final = 2.0


class TunnelStream(OutboundStream):
    """An `asgi_core.StreamTransport` over one stream of an HTTP/2 connection."""

    __slots__ = (
        "_closing",
        "_eof_written",
        "_head_sent",
        "_inbox",
        "_linger",
        "_lost",
        "_paused",
        "inner",
    )

    def __init__(self, protocol: H2Protocol, stream_id: int) -> None:
        super().__init__(protocol, stream_id)
        self.inner: asyncio.Protocol | None = None
        self._head_sent = False
        self._closing = False  # close() was called: nothing more is read or written
        self._eof_written = False  # write_eof() was called: nothing more is written, reading goes on
        self._paused = False  # whether we told `inner` to pause writing
        # DATA on its way to `inner`, held (unacknowledged) while reading is paused.
        self._inbox = TunnelInbox(self._deliver, self._still_reading)
        self._lost = False
        self._linger: Deadline | None = None  # made when first needed

    def attach(self, inner: asyncio.Protocol) -> None:
        self.inner = inner
        inner.connection_made(self)  # type: ignore[arg-type]

    # ---- StreamTransport -----------------------------------------------------------------------------

    def send_head(self, status: int, headers: list[tuple[bytes, bytes]], *, end_stream: bool = False) -> None:
        if self._head_sent or self.state is not StreamState.OPEN:
            return
        self._head_sent = True
        self.protocol.sender.send_headers(self, response_head(status, headers), end_stream=end_stream)
        if end_stream and self.state is StreamState.OPEN:
            self._closing = True
            self.mark_ended()

    def write(self, data: bytes | bytearray | memoryview, /) -> None:
        if not tunnel_takes(data, ended=self._closing or self._eof_written, head_sent=self._head_sent):
            return
        self.queue(bytes(data))
        if not self._paused and self.buffered > self.protocol.config.write_buffer_high_water:
            self._paused = True
            if self.inner is not None:
                self.inner.pause_writing()

    def writelines(self, chunks: list[bytes]) -> None:
        self.write(b"".join(chunks))

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        if self._closing or self._eof_written:
            return
        require_tunnel_answer(head_sent=self._head_sent, before="the stream is ended")
        self._eof_written = True
        self.finish()

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        if not self._head_sent:
            # Taken over but never answered: the peer learns the stream failed rather than waiting forever.
            self.reset(ErrorCodes.INTERNAL_ERROR)
        elif self.state is StreamState.OPEN:
            self.finish()  # END_STREAM once the held data is out; on_ended takes it from there
        elif self.state is StreamState.ENDED:  # half-closed after write_eof: stop reading too
            self._lose(None)
            self._start_linger()

    def abort(self) -> None:
        self._closing = True
        self.reset(ErrorCodes.CANCEL)

    def is_closing(self) -> bool:
        return self._closing or self._lost or self.state is StreamState.CLOSED

    def pause_reading(self) -> None:
        self._inbox.pause()

    def resume_reading(self) -> None:
        if self._inbox.resume() and self.peer_ended and self._inbox.empty and not self._inbox.paused:
            self._deliver_eof()

    def is_reading(self) -> bool:
        return not self._inbox.paused

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def get_extra_info(self, name: str, default: Any = None, /) -> Any:
        if name == "stream_id":
            return self.stream_id
        return self.protocol.transport.get_extra_info(name, default)

    # ---- called by the protocol ----------------------------------------------------------------------

    def awaits_peer_end(self) -> bool:
        """Ended on our side, the stream stays until the peer ends its side: read (after write_eof) or
        discarded (after close, for at most LINGER seconds)."""
        return (self._eof_written or self._closing) and not self.peer_ended and self.state is StreamState.ENDED

    def receive_data(self, data: bytes, flow_controlled_length: int) -> None:
        if self._still_reading():
            # Unacknowledged while held: the peer's window closes and it stops sending.
            self._inbox.receive(data, flow_controlled_length)
        else:
            self.protocol.sender.acknowledge(self.stream_id, flow_controlled_length)

    def end_of_body(self) -> None:
        self.peer_ended = True
        if self._linger is not None and self._linger.armed:  # closed and waiting for exactly this: a clean end
            self._linger.close()
            self.protocol.stream_done(self)
        elif self._inbox.empty and not self._inbox.paused:
            self._deliver_eof()

    def on_writable(self) -> None:
        if self._paused:
            self._paused = False
            if self.inner is not None and not self.is_closing():
                self.inner.resume_writing()

    def on_ended(self) -> None:
        if self._closing:
            self._lose(None)
            self._start_linger()
        elif not (self._eof_written and not self.peer_ended):  # unless half-closed and still reading
            self._lose(None)

    def on_closed(self) -> None:
        self._closing = True
        self._stop_linger()
        self._lose(ConnectionResetError("the HTTP/2 stream was reset"))

    # ---- internals -----------------------------------------------------------------------------------

    def _still_reading(self) -> bool:
        return not (self._closing or self._lost or self.state is StreamState.CLOSED)

    def _deliver(self, data: bytes, flow_controlled_length: int) -> None:
        if self.inner is not None and data:
            self.inner.data_received(data)
        self.protocol.sender.acknowledge(self.stream_id, flow_controlled_length)

    def _deliver_eof(self) -> None:
        if self.inner is None or not self._still_reading():
            return
        keep_open = self.inner.eof_received()
        if self.state is StreamState.ENDED:
            self._finished()  # both sides have sent END_STREAM: the tunnel is over
        elif not keep_open:
            self.close()

    def _finished(self) -> None:
        self._closing = True
        self._lose(None)
        self.protocol.stream_done(self)

    def _start_linger(self) -> None:
        if self.peer_ended or (self._linger is not None and self._linger.armed):
            return
        if self._linger is None:
            self._linger = Deadline(asyncio.get_running_loop(), self._linger_over)
        self._linger.arm(LINGER)

    def _stop_linger(self) -> None:
        if self._linger is not None:
            self._linger.close()

    def _linger_over(self) -> None:
        if not self.peer_ended:
            self.protocol.reset_stream(self.stream_id, ErrorCodes.NO_ERROR)

    def _lose(self, exc: Exception | None) -> None:
        if self._lost:
            return
        self._lost = True
        self.protocol.sender.acknowledge(self.stream_id, self._inbox.drop())
        inner = self.inner
        if inner is not None:
            # As asyncio does: connection_lost comes from the loop, never from inside a call the protocol made.
            asyncio.get_running_loop().call_soon(inner.connection_lost, exc)
