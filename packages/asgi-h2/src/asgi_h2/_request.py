"""One request stream: asgi-core's `ResponseWriter` on an HTTP/2 stream, and its request body's credit.

The head is held from `start_response` until the next call, so a response without a body leaves as a single
HEADERS frame carrying END_STREAM (HEAD, 204, 304, empty bodies) instead of HEADERS then an empty DATA.
Request body bytes are acknowledged to the peer (WINDOW_UPDATE) only when the app has taken them, so the
peer can never have more than our window of body waiting in memory, and a slow app slows its client down.

Hot module: this code runs for every stream (its speed tricks: docs/discussion/design.md, "Speed").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, BinaryIO, Final

from asgi_core import Headers, RequestCycle, content_length
from h2.errors import ErrorCodes

from ._headers import fields, response_head
from ._stream import OPEN, OutboundStream

if TYPE_CHECKING:
    from ._protocol import H2Protocol

_BODYLESS: Final = frozenset({204, 304})


class RequestStream(OutboundStream):
    """A stream carrying one request and its response through a `RequestCycle`."""

    __slots__ = (
        "_declared_length",
        "_expect_continue",
        "_head",
        "_sent",
        "_unacknowledged",
        "cycle",
        "head_request",
    )

    can_send_trailers = True
    can_send_informational = True
    can_sendfile = False

    def __init__(
        self, protocol: H2Protocol, stream_id: int, *, expect_continue: bool = False, head_request: bool = False
    ) -> None:
        super().__init__(protocol, stream_id)
        self.cycle: RequestCycle | None = None
        self.head_request = head_request
        self._head: Headers | None = None
        self._expect_continue = expect_continue
        self._unacknowledged = 0
        self._declared_length: int | None = None
        self._sent = 0

    # ---- request side (called by the protocol) -------------------------------------------------------

    def receive_data(self, data: bytes, flow_controlled_length: int) -> None:
        padding = flow_controlled_length - len(data)
        if padding:
            self.protocol.acknowledge(self.stream_id, padding)
        cycle = self.cycle
        if cycle is None or self.closed:
            self.protocol.acknowledge(self.stream_id, len(data))
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
            self.protocol.acknowledge(self.stream_id, self._unacknowledged)
            self._unacknowledged = 0

    def on_closed(self) -> None:
        self.release_credit()
        if self.cycle is not None:
            self.cycle.connection_lost()

    def on_ended(self) -> None:
        self.release_credit()

    # ---- ResponseWriter ------------------------------------------------------------------------------

    def request_body(self) -> None:
        if self._expect_continue and self.state is OPEN and self._head is None:
            self._expect_continue = False
            self.protocol.send_headers(self, [(b":status", b"100")], end_stream=False)

    def body_consumed(self, size: int) -> None:
        size = min(size, self._unacknowledged)
        if size and not self.closed:
            self._unacknowledged -= size
            self.protocol.acknowledge(self.stream_id, size)

    def send_informational(self, status: int, headers: Headers) -> None:
        if self.state is not OPEN:
            return
        try:
            head = response_head(status, headers)
        except ValueError as exc:
            self.protocol.context.logger.debug("informational response dropped: %s", exc)
            return
        self.protocol.send_headers(self, head, end_stream=False)

    def start_response(self, status: int, headers: Headers) -> None:
        head = response_head(status, headers)
        declared = None
        if not self.head_request and status not in _BODYLESS:
            for name, value in head:
                if name == b"content-length":
                    declared = content_length(value)  # ValueError: the cycle answers 500
                    if not value.isdigit():  # "5, 5": sent on as the one value it means
                        head = [(n, b"%d" % declared if n == b"content-length" else v) for n, v in head]
        self._head = head
        self._declared_length = declared
        self._expect_continue = False

    def send_data(self, data: bytes) -> None:
        self._sent += len(data)
        if self._declared_length is not None and self._sent > self._declared_length:
            # RFC 9113 section 8.1.1: a body longer than its content-length is malformed; the app is told
            # (the cycle then resets the stream) rather than the client receiving a broken response.
            raise ValueError(f"more body than the declared content-length of {self._declared_length}")
        self._send_head(end_stream=False)
        self.queue(data)

    async def drain(self) -> None:
        await self.wait_writable()

    async def send_file(self, file: BinaryIO, offset: int, count: int) -> None:
        raise NotImplementedError("HTTP/2 bodies go through the flow-controlled send_data")  # can_sendfile

    def end_response(self, trailers: Headers | None) -> None:
        if self.state is not OPEN:
            return
        if self._declared_length is not None and self._sent != self._declared_length:
            raise ValueError(
                f"body of {self._sent} bytes for a declared content-length of {self._declared_length}"
            )
        if not trailers and not self.buffered and self._head is not None:
            self._send_head(end_stream=True)
            return
        self._send_head(end_stream=False)
        trailer_fields = None
        if trailers:
            try:
                trailer_fields = fields(trailers)
            except ValueError as exc:
                # The body is out already; an invalid trailer is dropped rather than failing the response.
                self.protocol.context.logger.warning("HTTP/2 trailers dropped: %s", exc)
        self.finish(trailer_fields)

    def abort_response(self) -> None:
        self.reset(ErrorCodes.INTERNAL_ERROR)

    # ---- internals -----------------------------------------------------------------------------------

    def _send_head(self, *, end_stream: bool) -> None:
        head, self._head = self._head, None
        if head is None or self.state is not OPEN:
            return
        self.protocol.send_headers(self, head, end_stream=end_stream)
        if end_stream and self.state is OPEN:
            self.mark_ended()
