"""One request stream: asgi-core's `ResponseWriter` on an HTTP/2 stream, and its request body's credit.

The head is held (asgi-core's `StreamResponse`) from `start_response` until the next call, so a response without
a body leaves as a single HEADERS frame carrying END_STREAM (HEAD, 204, 304, empty bodies) instead of HEADERS
then an empty DATA.
Request body bytes are acknowledged to the peer (WINDOW_UPDATE) only when the app has taken them, so the
peer can never have more than our window of body waiting in memory, and a slow app slows its client down.

Hot module: this code runs for every stream (its speed tricks: docs/discussion/design.md, "Speed").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, BinaryIO, Final

from asgi_core import Headers, RequestCycle, RequestHead, StreamResponse, informational_head
from h2.errors import ErrorCodes

from ._stream import OutboundStream, StreamState

if TYPE_CHECKING:
    from ._protocol import H2Protocol

_CONTINUE: Final[Headers] = [(b":status", b"100")]


class RequestStream(OutboundStream):
    """A stream carrying one request and its response through a `RequestCycle`."""

    __slots__ = ("_unacknowledged", "cycle", "response")

    can_send_trailers = True
    can_send_informational = True
    can_sendfile = False

    def __init__(self, protocol: H2Protocol, stream_id: int, head: RequestHead, *, ended: bool) -> None:
        super().__init__(protocol, stream_id)
        self.peer_ended = ended
        self.cycle: RequestCycle | None = None
        self.response = StreamResponse(head, ended=ended)
        self._unacknowledged = 0

    # ---- request side (called by the protocol) -------------------------------------------------------

    def receive_data(self, data: bytes, flow_controlled_length: int) -> None:
        padding = flow_controlled_length - len(data)
        if padding:
            self.protocol.sender.acknowledge(self.stream_id, padding)
        cycle = self.cycle
        if cycle is None or self.closed:
            self.protocol.sender.acknowledge(self.stream_id, len(data))
            return
        self._unacknowledged += len(data)
        cycle.feed_body(data)

    def end_of_body(self) -> None:
        self.peer_ended = True
        if self.cycle is not None:
            self.cycle.end_body()

    def release_credit(self) -> None:
        """Body the app will never read: hand its share of the connection window back."""
        if self._unacknowledged:
            self.protocol.sender.acknowledge(self.stream_id, self._unacknowledged)
            self._unacknowledged = 0

    def on_closed(self) -> None:
        self.release_credit()
        # The cycle keeps this stream (its writer): a finished stream lets go of it, or the two stay a reference
        # cycle that only the garbage collector frees, one per request.
        cycle, self.cycle = self.cycle, None
        if cycle is not None:
            cycle.connection_lost()

    def on_ended(self) -> None:
        self.release_credit()
        self.cycle = None  # as in `on_closed`; the connection forgets the stream next

    # ---- ResponseWriter ------------------------------------------------------------------------------

    def request_body(self) -> None:
        if self.state is StreamState.OPEN and self.response.continue_due():
            self.protocol.sender.send_headers(self, _CONTINUE, end_stream=False)

    def body_consumed(self, size: int) -> None:
        size = min(size, self._unacknowledged)
        if size and not self.closed:
            self._unacknowledged -= size
            self.protocol.sender.acknowledge(self.stream_id, size)

    def send_informational(self, status: int, headers: Headers) -> None:
        if self.state is StreamState.OPEN:
            head = informational_head(status, headers, self.protocol.context.logger)
            if head is not None:
                self.protocol.sender.send_headers(self, head, end_stream=False)

    def start_response(self, status: int, headers: Headers) -> None:
        self.response.start(status, headers)

    def send_whole(self, status: int, headers: Headers, body: bytes) -> None:
        """A response in one piece (asgi-core's cycle offers it): HEADERS and DATA carrying END_STREAM, or
        HEADERS alone with it, made in one go when the peer's windows admit the whole body (`_frames`), else
        through the stream's buffered path. A head that cannot be sent, or a content-length other than the
        body's, raises `ValueError` with nothing sent (the app's failure then becomes a 500); a body other than
        the content-length declares is malformed (RFC 9113 section 8.1.1) and raises `RuntimeError`, for the
        cycle to reset the stream, as when the same body comes in several messages."""
        response = self.response
        response.start(status, headers)  # ValueError: refused, nothing held
        try:
            response.count(len(body))
            response.end(None, self.protocol.context.logger)
        except ValueError as exc:
            raise RuntimeError(str(exc)) from exc  # the head was taken: this must not read as a refused head
        head = response.take_head()
        if head is None or self.state is not StreamState.OPEN:
            return
        sender = self.protocol.sender
        if sender.send_whole(self, head, body):
            if self.state is StreamState.OPEN:  # else reset instead: h2 found the stream closed
                self.mark_ended()
            return
        sender.send_headers(self, head, end_stream=not body)
        if body:
            self.queue(body)
            self.finish()
        elif self.state is StreamState.OPEN:
            self.mark_ended()

    def send_data(self, data: bytes) -> None:
        self.response.count(len(data))
        self._send_head(end_stream=False)
        self.queue(data)

    async def drain(self) -> None:
        await self.wait_writable()

    async def send_file(self, file: BinaryIO, offset: int, count: int) -> None:
        raise NotImplementedError("HTTP/2 bodies go through the flow-controlled send_data")  # can_sendfile

    def end_response(self, trailers: Headers | None) -> None:
        if self.state is not StreamState.OPEN:
            return
        trailer_fields = self.response.end(trailers, self.protocol.context.logger)
        if not trailer_fields and not self.buffered and self.response.head is not None:
            self._send_head(end_stream=True)
            return
        self._send_head(end_stream=False)
        self.finish(trailer_fields)

    def abort_response(self) -> None:
        self.reset(ErrorCodes.INTERNAL_ERROR)

    # ---- internals -----------------------------------------------------------------------------------

    def _send_head(self, *, end_stream: bool) -> None:
        head = self.response.take_head()
        if head is None or self.state is not StreamState.OPEN:
            return
        self.protocol.sender.send_headers(self, head, end_stream=end_stream)
        if end_stream and self.state is StreamState.OPEN:
            self.mark_ended()
