"""Extended CONNECT (RFC 9220): one HTTP/3 request stream carrying another protocol, WebSocket in practice.

The protocol that takes over (found in the registry by the `:protocol` token, as HTTP/1.1 finds it by the
`Upgrade` token and HTTP/2 by its own extended CONNECT) sees an `asgi_core.StreamTransport`: the stream's DATA
arrives through `data_received`, the client's FIN through `eof_received`, its reset or the connection's end
through `connection_lost`; what it writes leaves as DATA frames, and it answers the handshake with `send_head`.

As RFC 9220 section 3 maps it: the stream's FIN is a TCP FIN and a reset a TCP RST. So `write_eof` ends our
side and reading goes on until the client ends its side too, while `close` ends our side and stops reading
(what the client still sends is refused with STOP_SENDING). Reading paused by the protocol holds the client
back through QUIC flow control: what waits here counts against the stream's credit.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from aioquic.h3.connection import ErrorCode
from asgi_core import ConnectionInfo, Headers, TunnelInbox, response_head, tunnel_takes

if TYPE_CHECKING:
    from ._protocol import H3Protocol


class TunnelStream:
    """An `asgi_core.StreamTransport` over one request stream of an HTTP/3 connection."""

    __slots__ = (
        "_eof_written",
        "_extra",
        "_head_sent",
        "_inbox",
        "_writing_paused",
        "closed",
        "inner",
        "peer_ended",
        "protocol",
        "stream_id",
    )

    def __init__(self, protocol: H3Protocol, stream_id: int, conn: ConnectionInfo) -> None:
        self.protocol = protocol
        self.stream_id = stream_id
        self.inner: asyncio.Protocol | None = None
        #: Our side is over (closed, aborted, or the stream cut): nothing more is written or read.
        self.closed = False
        self.peer_ended = False
        self._head_sent = False
        self._eof_written = False
        self._writing_paused = False
        #: Data on its way to `inner`, held while reading is paused: the stream's QUIC credit waits for it.
        self._inbox = TunnelInbox(self._deliver, self._still_reading)
        self._extra: dict[str, Any] = {"peername": conn.client, "sockname": conn.server}

    def attach(self, inner: asyncio.Protocol) -> None:
        self.inner = inner
        inner.connection_made(self)  # type: ignore[arg-type]

    # ---- StreamTransport -----------------------------------------------------------------------------

    def send_head(self, status: int, headers: Headers, *, end_stream: bool = False) -> None:
        if self._head_sent or self.closed:
            return
        self._head_sent = True
        self.protocol.send_headers(self.stream_id, response_head(status, headers), end_stream=end_stream)
        if end_stream:  # a refusal: the exchange is over
            self._eof_written = True
            self._finish()

    def write(self, data: bytes | bytearray | memoryview, /) -> None:
        if not tunnel_takes(data, ended=self.closed or self._eof_written, head_sent=self._head_sent):
            return
        protocol = self.protocol
        protocol.send_data(self.stream_id, bytes(data), end_stream=False)
        if not self._writing_paused and protocol.unacknowledged(self.stream_id) > protocol.high_water:
            self._writing_paused = True
            protocol.wait_for_acks(self)
            if self.inner is not None:
                self.inner.pause_writing()

    def writelines(self, list_of_data: list[bytes], /) -> None:
        self.write(b"".join(list_of_data))

    def write_eof(self) -> None:
        if self.closed or self._eof_written:
            return
        self._eof_written = True
        if self._head_sent:
            self.protocol.send_data(self.stream_id, b"", end_stream=True)
        if self.peer_ended and self._inbox.empty:
            self._finish()

    def close(self) -> None:
        if self.closed:
            return
        if not self._eof_written:
            self._eof_written = True
            if self._head_sent:
                self.protocol.send_data(self.stream_id, b"", end_stream=True)
            else:  # closed without an answer: the client must not wait for one
                self.protocol.reset_stream(self.stream_id, ErrorCode.H3_INTERNAL_ERROR)
        self._finish()

    def abort(self) -> None:
        if not self.closed:
            self.protocol.reset_stream(self.stream_id, ErrorCode.H3_REQUEST_CANCELLED)
            self._finish()

    def is_closing(self) -> bool:
        return self.closed

    def can_write_eof(self) -> bool:
        return True

    def pause_reading(self) -> None:
        self._inbox.pause()

    def resume_reading(self) -> None:
        if not self._inbox.resume():
            return
        self.protocol.body_read()  # the credit held for the inbox goes to the client
        if self._inbox.empty and self.peer_ended and not self.closed:
            self._deliver_eof()

    @property
    def buffered_body(self) -> int:
        """Bytes held while reading is paused: the stream's QUIC credit waits for them."""
        return self._inbox.size

    def get_extra_info(self, name: str, default: Any = None, /) -> Any:
        return self._extra.get(name, default)

    # ---- what the protocol calls ---------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        if self._still_reading():
            self._inbox.receive(data, len(data))

    def end_of_body(self) -> None:
        self.peer_ended = True
        if self._inbox.empty and not self.closed:
            self._deliver_eof()

    def cut(self) -> None:
        """The stream is gone under the protocol (reset either way, STOP_SENDING, or the connection lost)."""
        if self.closed:
            return
        self._finish()

    def wake(self) -> None:
        """The client acknowledged what held writing back."""
        if self._writing_paused:
            self._writing_paused = False
            if self.inner is not None and not self.closed:
                self.inner.resume_writing()

    # ---- internals -----------------------------------------------------------------------------------

    def _still_reading(self) -> bool:
        return not self.closed and self.inner is not None

    def _deliver(self, data: bytes, credit: int) -> None:
        if self.inner is not None:
            self.inner.data_received(data)

    def _deliver_eof(self) -> None:
        inner = self.inner
        keep_open = inner.eof_received() if inner is not None else False
        if not keep_open:
            self.close()
        elif self._eof_written:
            self._finish()  # both sides have ended

    def _finish(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._inbox.drop()
        self.protocol.stream_done(self)
        inner = self.inner
        if inner is not None:
            # As after an asyncio transport's close: the protocol hears of it on the next loop iteration.
            self.protocol.loop.call_soon(inner.connection_lost, None)
