"""One request stream: asgi-core's `ResponseWriter` on an HTTP/3 request stream (RFC 9114 section 4.1).

The head is held (asgi-core's `StreamResponse`, as for HTTP/2) from `start_response` until the next call, so a
response without a body leaves as a single HEADERS frame with the stream's FIN (HEAD, 204, 304, empty bodies).
Bytes go to aioquic, which sends them as the peer's QUIC flow-control windows allow; the app is held back
(`drain`) while more than the write high-water mark of this stream is still unacknowledged by the peer, so a
client that does not read slows its app down instead of growing the server's memory.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, BinaryIO, Final

from aioquic.h3.connection import ErrorCode
from asgi_core import Headers, RequestCycle, RequestHead, StreamResponse, informational_head

if TYPE_CHECKING:
    from ._protocol import H3Protocol

_CONTINUE: Final[Headers] = [(b":status", b"100")]


class RequestStream:
    """A request stream carrying one request and its response through a `RequestCycle`."""

    __slots__ = ("_waiter", "closed", "cycle", "peer_ended", "protocol", "response", "stream_id")

    can_send_trailers = True
    can_send_informational = True
    can_sendfile = False

    def __init__(self, protocol: H3Protocol, stream_id: int, head: RequestHead, *, ended: bool) -> None:
        self.protocol = protocol
        self.stream_id = stream_id
        self.cycle: RequestCycle | None = None
        self.response = StreamResponse(head, ended=ended)
        self.peer_ended = ended
        #: Our side is over: the response ended (FIN sent) or the stream was reset either way.
        self.closed = False
        self._waiter: asyncio.Future[None] | None = None

    # ---- request side (called by the protocol) -------------------------------------------------------

    def end_of_body(self) -> None:
        self.peer_ended = True
        if self.cycle is not None:
            self.cycle.end_body()

    def receive_data(self, data: bytes) -> None:
        if self.cycle is not None and not self.closed:
            self.cycle.feed_body(data)

    def cut(self) -> None:
        """The stream is over without a proper end (reset either way, or the connection lost)."""
        if self.closed:
            return
        self.closed = True
        self.wake()
        if self.cycle is not None:
            self.cycle.connection_lost()
        self.protocol.stream_done(self)
        self.cycle = None  # see `_ended`

    def wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # ---- ResponseWriter ------------------------------------------------------------------------------

    def request_body(self) -> None:
        if not self.closed and self.response.continue_due():
            self.protocol.send_headers(self.stream_id, _CONTINUE, end_stream=False)

    def body_consumed(self, size: int) -> None:
        self.protocol.body_read()

    def send_informational(self, status: int, headers: Headers) -> None:
        if not self.closed:
            head = informational_head(status, headers, self.protocol.context.logger)
            if head is not None:
                self.protocol.send_headers(self.stream_id, head, end_stream=False)

    def start_response(self, status: int, headers: Headers) -> None:
        self.response.start(status, headers)

    def send_whole(self, status: int, headers: Headers, body: bytes) -> None:
        """A response in one piece (asgi-core's cycle offers it): HEADERS and one DATA frame carrying the
        stream's FIN, or HEADERS alone with it. A head that cannot be sent, or a content-length other than
        the body's, raises `ValueError` with nothing sent (the app's failure then becomes a 500)."""
        head = self.response.whole(status, headers, len(body))
        if self.closed:
            return
        if body:
            self.protocol.send_headers(self.stream_id, head, end_stream=False)
            self.protocol.send_data(self.stream_id, body, end_stream=True)
        else:
            self.protocol.send_headers(self.stream_id, head, end_stream=True)
        self._ended()

    def send_data(self, data: bytes) -> None:
        self.response.count(len(data))
        self._send_head(end_stream=False)
        if not self.closed:
            self.protocol.send_data(self.stream_id, data, end_stream=False)

    def drain(self) -> asyncio.Future[None] | None:
        if self.closed or self.protocol.unacknowledged(self.stream_id) <= self.protocol.high_water:
            return None
        if self._waiter is None:
            self._waiter = self.protocol.loop.create_future()
            self.protocol.wait_for_acks(self)
        return self._waiter

    async def send_file(self, file: BinaryIO, offset: int, count: int) -> None:
        raise NotImplementedError("HTTP/3 bodies go through the flow-controlled send_data")  # can_sendfile

    def end_response(self, trailers: Headers | None) -> None:
        if self.closed:
            return
        trailer_fields = self.response.end(trailers, self.protocol.context.logger)
        if self.response.head is not None and not trailer_fields:
            self._send_head(end_stream=True)
        else:
            self._send_head(end_stream=False)
            if trailer_fields:
                self.protocol.send_headers(self.stream_id, trailer_fields, end_stream=True)
            else:
                self.protocol.send_data(self.stream_id, b"", end_stream=True)
        self._ended()

    def abort_response(self) -> None:
        if not self.closed:
            self.protocol.reset_stream(self.stream_id, ErrorCode.H3_INTERNAL_ERROR)
            self.cut()

    # ---- internals -----------------------------------------------------------------------------------

    def _send_head(self, *, end_stream: bool) -> None:
        head = self.response.take_head()
        if head is not None and not self.closed:
            self.protocol.send_headers(self.stream_id, head, end_stream=end_stream)

    def _ended(self) -> None:
        self.closed = True
        self.wake()
        self.protocol.stream_done(self)
        # The cycle keeps this stream (its writer): a finished stream lets go of it, or the two stay a reference
        # cycle that only the garbage collector frees, one per request.
        self.cycle = None
