"""HTTP/3 connections: QUIC events in, through aioquic's HTTP/3 layer, one asgi-core request cycle per stream.

Connection lifecycle: SERVING (request streams come and go) -> DRAINING (`shutdown()`: a GOAWAY names the
first request stream we will not serve, RFC 9114 section 5.2; the streams before it finish, later ones are
rejected with H3_REQUEST_REJECTED, which the client may retry elsewhere) -> CLOSED once no stream is left,
or after the drain's idle grace if none was open. `going_away()`, an exhausted abuse limit, the peer's close
or QUIC's idle timeout go straight to CLOSED: every cycle still running sees `http.disconnect`.

Each connection is registered in `context.connections` from its first packet to its close, so the server
counts and drains it like a TCP one.
"""

from __future__ import annotations

import asyncio
import enum

from aioquic.asyncio.protocol import QuicConnectionProtocol, QuicStreamHandler
from aioquic.h3 import events as h3
from aioquic.h3.connection import ErrorCode, H3Connection
from aioquic.quic import events as quic_events
from aioquic.quic.connection import NetworkAddress, QuicConnection
from asgi_core import (
    Admission,
    ConnectionInfo,
    Deadline,
    Headers,
    HeadRejected,
    RequestHead,
    ServerContext,
    WindowCounter,
    apply_forwarded,
    cut_streams,
    is_head_request,
)

from . import _quic
from ._headers import parse_request
from ._limits import H3Limits
from ._request import RequestStream
from ._streams import new_request, open_tunnel, reply_status
from ._tunnel import TunnelStream

#: What a request stream carries: a request for the app, or an extended CONNECT's tunnel.
Stream = RequestStream | TunnelStream


class ConnectionState(enum.Enum):
    SERVING = "serving"
    DRAINING = "draining"
    CLOSED = "closed"


class H3Protocol(QuicConnectionProtocol):
    """One QUIC connection serving ASGI over HTTP/3; made by `H3Server` for each new connection."""

    def __init__(
        self,
        quic: QuicConnection,
        stream_handler: QuicStreamHandler | None = None,
        *,
        context: ServerContext,
        limits: H3Limits,
    ) -> None:
        super().__init__(quic, stream_handler)
        self.context = context
        self.config = config = context.config
        self.limits = limits
        self.loop: asyncio.AbstractEventLoop = self._loop
        self.high_water = config.write_buffer_high_water
        concurrent = limits.max_concurrent_streams or config.http2_max_concurrent_streams
        _quic.limit_concurrent_streams(quic, concurrent)
        #: Request streams whose body is still coming: their QUIC credit follows their app's reads. The
        #: connection becomes a `PacedConnection` with its first request body: until then it pays nothing.
        self.paced: dict[int | None, _quic.BodyBuffer] = {}
        self.streams: dict[int, Stream] = {}
        self.h3: H3Connection | None = None
        self.state = ConnectionState.SERVING
        self._admission = Admission(self._loop, context.logger, concurrent, limits.max_pending_streams, "HTTP/3")
        self._resets = WindowCounter(limits.max_resets, limits.reset_window)
        #: Streams whose sender waits for the client to acknowledge, with their unacknowledged bytes when
        #: last seen to go down and the time then: a stream that makes no progress for `send_timeout` is reset.
        self._waiting_acks: dict[Stream, tuple[int, float]] = {}
        self._send_timeout = limits.send_timeout if limits.send_timeout is not None else config.send_timeout
        self._stalls = Deadline(self._loop, self._reset_stalled)
        #: Ended responses whose last bytes the peer has not acknowledged: a draining connection waits for them.
        self._flushing: set[int] = set()
        self._next_stream_id = 0  # above every client request stream id seen: what a GOAWAY names
        #: Request streams whose rest we refused (STOP_SENDING) and whose end has not come: what still arrives
        #: on them is no new request. Bounded by QUIC's stream limit, as each holds its slot until it ends.
        self._stopped: set[int] = set()
        self._goaway_id: int | None = None
        self._linger = Deadline(self._loop, self._close_idle)
        self._conn_info: ConnectionInfo | None = None
        self._soon: asyncio.Handle | None = None

    # ---- asyncio.DatagramProtocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.context.connections.add(self)

    def datagram_received(self, data: bytes | str, addr: NetworkAddress) -> None:
        if self._conn_info is None:
            self._conn_info = self._connection_info(addr)
        self._quic.receive_datagram(data, addr, now=self._loop.time())  # type: ignore[arg-type]
        self._process_events()
        if self.state is not ConnectionState.CLOSED and _quic.closing(self._quic):
            self._terminated()  # the peer closed: its apps hear of it now, not after the draining period
        # aioquic's protocol transmits here at once; a moment later, the responses of the apps this packet
        # started (a plain one completes in its task's first step), and the packets that came with it, leave
        # together with its ACK: one round of datagrams instead of two or more.
        self._transmit_later()
        if self._waiting_acks:
            self._wake_acknowledged()
        if self.state is ConnectionState.DRAINING:
            self._close_if_idle()

    def quic_event_received(self, event: quic_events.QuicEvent) -> None:
        if isinstance(event, quic_events.ProtocolNegotiated):
            self.h3 = H3Connection(self._quic)
            if self.context.draining:
                self.shutdown()
        elif isinstance(event, quic_events.StreamReset):
            self._stopped.discard(event.stream_id)
            self._peer_reset(event.stream_id)
        elif isinstance(event, quic_events.StopSendingReceived):
            stream = self.streams.get(event.stream_id)
            if stream is not None:
                stream.cut()  # the client does not want the response: the app sees http.disconnect
            self._count_reset()
        elif isinstance(event, quic_events.ConnectionTerminated):
            self._terminated()
            return
        if self.h3 is None or self.state is ConnectionState.CLOSED:
            return
        h3_events = self.h3.handle_event(event)
        if _quic.closing(self._quic):  # aioquic closed it for a protocol error: nothing more is served
            self._terminated()
            return
        for h3_event in h3_events:
            if isinstance(h3_event, h3.HeadersReceived):
                self._headers_received(h3_event)
            elif isinstance(h3_event, h3.DataReceived):
                stream = self.streams.get(h3_event.stream_id)
                if stream is None:
                    if h3_event.stream_ended:
                        self._stopped.discard(h3_event.stream_id)
                else:
                    if h3_event.data:
                        stream.receive_data(h3_event.data)
                    if h3_event.stream_ended:
                        self.paced.pop(stream.stream_id, None)
                        stream.end_of_body()

    # ---- ServerConnection ----------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Step 1 of the drain: GOAWAY naming the first request we will not serve; close once idle."""
        if self.state is not ConnectionState.SERVING or self.h3 is None:
            return  # before the handshake ends, `quic_event_received` calls this again
        self.state = ConnectionState.DRAINING
        self._goaway_id = self._next_stream_id
        _quic.send_goaway(self.h3, self._quic, self._goaway_id)
        self.transmit()
        if not self.streams:
            self._linger.arm(self.config.drain_idle_grace)
            self._close_if_idle()

    def going_away(self) -> None:
        """Step 2: every stream still open is cancelled, its app told, and the connection closed."""
        self._close(ErrorCode.H3_NO_ERROR, "server going away")

    # ---- what the streams call -----------------------------------------------------------------------

    def send_headers(self, stream_id: int, headers: Headers, *, end_stream: bool) -> None:
        if self.h3 is not None and self.state is not ConnectionState.CLOSED:
            self.h3.send_headers(stream_id, headers, end_stream=end_stream)
            self._transmit_later()

    def send_data(self, stream_id: int, data: bytes, *, end_stream: bool) -> None:
        if self.h3 is not None and self.state is not ConnectionState.CLOSED:
            self.h3.send_data(stream_id, data, end_stream)
            self._transmit_later()

    def reset_stream(self, stream_id: int, error_code: int) -> None:
        if self.state is not ConnectionState.CLOSED:
            self._quic.reset_stream(stream_id, error_code)
            self._transmit_later()

    def unacknowledged(self, stream_id: int) -> int:
        return _quic.unacknowledged(self._quic, stream_id)

    def body_read(self) -> None:
        """An app took request body: the stream's credit grows (`_quic.PacedConnection`) in the next packet."""
        self._transmit_later()

    def wait_for_acks(self, stream: Stream) -> None:
        self._waiting_acks[stream] = (self.unacknowledged(stream.stream_id), self._loop.time())
        if not self._stalls.armed:
            self._stalls.arm(self._send_timeout)

    def stream_done(self, stream: Stream) -> None:
        """The stream's response ended or it was cut: forget it (and close a draining connection left idle)."""
        if self.streams.pop(stream.stream_id, None) is None:
            return
        self.paced.pop(stream.stream_id, None)
        self._waiting_acks.pop(stream, None)
        if isinstance(stream, RequestStream) and stream.cycle is not None:
            self._admission.withdraw(stream.cycle)
        if self.state is ConnectionState.CLOSED:
            return
        if not stream.peer_ended:
            self._stop_reading(stream.stream_id)  # RFC 9114 section 4.1: the rest of the request is not needed
        if self.state is ConnectionState.DRAINING:
            self._flushing.add(stream.stream_id)
            self._close_if_idle()

    # ---- internals -----------------------------------------------------------------------------------

    def _headers_received(self, event: h3.HeadersReceived) -> None:
        stream_id = event.stream_id
        stream = self.streams.get(stream_id)
        if stream is not None:  # trailers: the body is over (their fields are not passed on, as for HTTP/2)
            if event.stream_ended:
                self.paced.pop(stream_id, None)
                stream.end_of_body()
            return
        if stream_id in self._stopped:  # trailers of a request whose rest we refused
            if event.stream_ended:
                self._stopped.discard(stream_id)
            return
        # Streams arrive in any order (QUIC orders data within a stream only): every new id is a new request.
        self._next_stream_id = max(self._next_stream_id, stream_id + 4)
        ended = event.stream_ended
        if self._goaway_id is not None and stream_id >= self._goaway_id:
            self.reset_stream(stream_id, ErrorCode.H3_REQUEST_REJECTED)
            if not ended:
                self._stop_reading(stream_id)
            return
        try:
            head = parse_request(event.headers, self.config, self.limits.max_field_section_size)
        except HeadRejected as exc:
            reply_status(self, stream_id, exc.status, head_only=is_head_request(event.headers))
            if not ended:
                self._stop_reading(stream_id)
            self._count_reset()
            return
        if head.method == "CONNECT":
            self._connect(stream_id, head, ended=ended)
            return
        self._open(stream_id, head, ended=ended)

    def _connect(self, stream_id: int, head: RequestHead, *, ended: bool) -> None:
        """Extended CONNECT (RFC 9220) to the upgrade handler of its `:protocol`; a plain CONNECT is 501."""
        conn = self._conn_info or self._connection_info(None)
        opened = open_tunnel(self, stream_id, head, conn) if head.protocol is not None else 501
        if isinstance(opened, int):
            reply_status(self, stream_id, opened, head_only=False)
            if not ended:
                self._stop_reading(stream_id)
            self._count_reset()
            return
        tunnel, inner = opened
        self.streams[stream_id] = tunnel
        self.paced[stream_id] = tunnel
        if not isinstance(self._quic, _quic.PacedConnection):
            _quic.pace(self._quic, self.paced)
        tunnel.attach(inner)
        if ended:
            tunnel.end_of_body()

    def _stop_reading(self, stream_id: int) -> None:
        self._quic.stop_stream(stream_id, ErrorCode.H3_NO_ERROR)
        self._stopped.add(stream_id)
        self._transmit_later()

    def _open(self, stream_id: int, head: RequestHead, *, ended: bool) -> None:
        conn = self._conn_info or self._connection_info(None)
        if self.config.forwarded_allow_ips:
            conn = apply_forwarded(self.config, conn, head.headers)
        stream = new_request(self, stream_id, head, conn, ended=ended)
        self.streams[stream_id] = stream
        if not ended and stream.cycle is not None:
            if not isinstance(self._quic, _quic.PacedConnection):
                _quic.pace(self._quic, self.paced)
            self.paced[stream_id] = stream.cycle
        assert stream.cycle is not None  # noqa: S101 - made with the stream
        if not self._admission.admit(stream.cycle):
            self.context.logger.warning("HTTP/3 peer %s opened too many streams at once", conn.client)
            self._close(ErrorCode.H3_EXCESSIVE_LOAD, "too many streams waiting")

    def _peer_reset(self, stream_id: int) -> None:
        stream = self.streams.get(stream_id)
        if stream is not None:
            # The request is cancelled: our half goes too, so that QUIC frees the stream (and its slot) now,
            # whatever the app still does (RFC 9114 section 4.1.1).
            self.reset_stream(stream_id, ErrorCode.H3_REQUEST_CANCELLED)
            stream.cut()
        self._count_reset()

    def _count_reset(self) -> None:
        """A stream the peer reset, or one we refused for the peer's error (HTTP/2's "MadeYouReset" is the
        same trick): past `max_resets` in `reset_window` the connection is closed."""
        if not self._resets.hit(self._loop.time()):
            self.context.logger.warning("HTTP/3 peer reset or spoilt too many streams: closing the connection")
            self._close(ErrorCode.H3_EXCESSIVE_LOAD, "too many stream resets")

    def _wake_acknowledged(self) -> None:
        low = self.high_water // 2
        now = self._loop.time()
        waiting = self._waiting_acks
        for stream, (seen, _) in list(waiting.items()):
            unacknowledged = self.unacknowledged(stream.stream_id)
            if stream.closed or unacknowledged <= low:
                del waiting[stream]
                stream.wake()
            elif unacknowledged < seen:
                waiting[stream] = (unacknowledged, now)  # progress: the stall clock starts again

    def _reset_stalled(self) -> None:
        """Streams whose client acknowledged nothing for `send_timeout` are reset (their apps see a disconnect):
        a client that keeps the connection alive but takes no data must not hold apps and buffers forever."""
        now = self._loop.time()
        timeout = self._send_timeout
        for stream, (_, since) in list(self._waiting_acks.items()):
            if now - since >= timeout and not stream.closed:
                self.context.logger.info(
                    "HTTP/3 stream %d: no data acknowledged for %.0f s", stream.stream_id, timeout
                )
                self.reset_stream(stream.stream_id, ErrorCode.H3_REQUEST_CANCELLED)
                stream.cut()
        if self._waiting_acks:
            earliest = min(since for _, since in self._waiting_acks.values())
            self._stalls.arm(max(earliest + timeout - now, 0.0))

    def _close_if_idle(self) -> None:
        """A draining connection closes once no stream is open and the peer has every response's last byte
        (a CONNECTION_CLOSE would discard what it has not acknowledged)."""
        if self.streams:
            return
        self._flushing = {sid for sid in self._flushing if self.unacknowledged(sid)}
        if not self._flushing:
            self._close(ErrorCode.H3_NO_ERROR, "")

    def _close_idle(self) -> None:
        """The drain's idle grace passed: whatever is still unacknowledged is given up."""
        if not self.streams:
            self._close(ErrorCode.H3_NO_ERROR, "")

    def _close(self, error_code: int, reason: str) -> None:
        if self.state is ConnectionState.CLOSED:
            return
        self.state = ConnectionState.CLOSED
        self.close(error_code=error_code, reason_phrase=reason)
        self._release()

    def _terminated(self) -> None:
        self.state = ConnectionState.CLOSED
        self._release()

    def _release(self) -> None:
        """The connection serves nothing more: every stream is cut and the server stops counting it."""
        self._linger.close()
        self._stalls.close()
        self.context.connections.discard(self)
        self._admission.clear()
        self._waiting_acks.clear()
        self.paced.clear()
        self._stopped.clear()
        cut_streams(self.streams)

    def abandon(self) -> None:
        """The endpoint closed under the connection: no packet can go out any more."""
        self._terminated()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._soon is not None:
            self._soon.cancel()
            self._soon = None

    def _transmit_later(self) -> None:
        # Many sends of one loop iteration (headers, data, several streams) leave in one round of datagrams.
        if self._soon is None:
            self._soon = self._loop.call_soon(self._transmit_now)

    def _transmit_now(self) -> None:
        self._soon = None
        if self._transport is not None and not self._transport.is_closing():
            self.transmit()

    def _connection_info(self, addr: NetworkAddress | None) -> ConnectionInfo:
        transport = self._transport
        sockname = transport.get_extra_info("sockname") if transport is not None else None
        return ConnectionInfo(
            client=(str(addr[0]), int(addr[1])) if addr is not None else None,
            server=(str(sockname[0]), int(sockname[1])) if sockname else None,
            scheme="https",
            alpn_protocol="h3",
        )
