"""One WebSocket connection on the wire: the handshake answer, wsproto's frame layer, keepalive, closing.

A connection is handed over from HTTP/1.1 (`Upgrade: websocket`; the transport is the TCP/TLS connection) or
from HTTP/2 (extended CONNECT, RFC 8441; the transport is a `StreamTransport` for one stream). Both take the
same path: the request is checked, the app runs in a `WebSocketSession`, and when it accepts, the answer goes
out as raw HTTP/1.1 bytes or through `send_head`, after which wsproto's frame layer carries the messages.

Closing, as RFC 6455 section 7 has it: whoever closes first sends a close frame and waits (at most
`CLOSE_TIMEOUT`) for the other's; the server then closes the TCP connection. A peer that breaks the protocol
gets a close frame with the reason (1002, 1007, 1009) and a half-close, so it reads that frame before the
connection goes, instead of losing it to a reset caused by its own unread data.

Hot module: this code runs for every frame (its speed tricks: docs/discussion/design.md, "Speed").
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, cast

from asgi_core import (
    ClientDisconnected,
    Deadline,
    FlowControl,
    Headers,
    ResponseWriter,
    ServerContext,
    StreamTransport,
    Transport,
    UpgradeRequest,
    build_websocket_scope,
    close_now,
)
from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage
from wsproto.extensions import Extension

from ._extensions import MessageBudget, MessageSizeLimit, PerMessageDeflate, negotiate_deflate
from ._frames import FrameReader, HandOff, data_frame
from ._handshake import HandshakeError, answer_headers, check_request
from ._responder import http1_head, make_writer, reject, with_server_headers
from ._session import SessionState, WebSocketSession

#: Seconds the peer has to answer our close frame (or to hang up after we failed the connection).
CLOSE_TIMEOUT = 5.0
#: Frames (events) read from one connection before the event loop serves the others: a burst of tiny frames
#: (endless empty continuations, a ping flood) then costs its sender one slice at a time, never the whole loop.
FRAMES_PER_SLICE = 256
#: Seconds the app gets to take the messages that came before a protocol violation (its echo of them goes
#: out before the close frame); past that the connection fails anyway.
VIOLATION_GRACE = 1.0
#: Bytes a client may send before its handshake is answered; past that, reading pauses until it is.
_EARLY_DATA_LIMIT = 64 * 1024
#: Bytes read and thrown away once the connection is closing, before a peer still sending is dropped.
_DISCARD_LIMIT = 1024 * 1024
_EXTENSIONS: dict[str, Any] = {"websocket.http.response": {}}
_FAILURE_REASONS = {1009: "message too big", 1007: "invalid payload data"}
# wsproto's members, as globals: on Python 3.11 a library enum's member costs 75 ns a lookup (design.md, "Speed").
WS_CLOSED = ConnectionState.CLOSED
WS_OPEN = ConnectionState.OPEN
WS_REMOTE_CLOSING = ConnectionState.REMOTE_CLOSING


class WebSocketProtocol(asyncio.Protocol):
    """An `asyncio.Protocol` for one WebSocket, created by the upgrade handler for one handshake request."""

    transport: Transport
    flow: FlowControl

    def __init__(self, context: ServerContext, request: UpgradeRequest) -> None:
        self.context = context
        self.config = context.config
        self.request = request
        self.tunnelled = request.http_version in ("2", "3")
        self.session: WebSocketSession | None = None
        self._loop = context.loop or asyncio.get_running_loop()
        self._key: bytes | None = None
        self._ws: Connection | None = None
        # Reads the common frames until the first other one; then None, and wsproto reads everything.
        self._frames: FrameReader | None = None
        self._uncompressed = False
        self._early_data = bytearray()
        self._text_parts: list[str] = []
        self._byte_parts: list[bytes | bytearray] = []
        self._last_received = 0.0
        loop = self._loop
        self._ping_deadline = Deadline(loop, self._ping_due)
        self._pong_deadline = Deadline(loop, self._pong_missing)
        self._awaiting_pong = False  # the deadline's state, read per received chunk without a call
        # The peer's answer to our close frame, or its hang-up after we failed the connection.
        self._close_deadline = Deadline(loop, self._close_timed_out)
        self._sent_close: tuple[int, str] | None = None
        self._pending_shutdown: tuple[int, str] | None = None
        # True from a protocol violation (or a dead peer) on: nothing more the peer sends is read.
        self._failed = False
        self._violation: tuple[int, str] | None = None
        self._violation_deadline = Deadline(loop, self._fail_violation)
        # A peer that takes none of our bytes for this long is gone (its pongs, our messages pile up unread).
        self._send_deadline = Deadline(loop, self._send_timed_out)
        self._eof_written = False
        self._discarded = 0

    # ---- asyncio.Protocol ----------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("Transport", transport)
        self.flow = FlowControl(self.transport)
        set_limits = getattr(transport, "set_write_buffer_limits", None)
        if set_limits is not None:
            set_limits(high=self.config.write_buffer_high_water)
        self.context.connections.add(self)
        request = self.request
        try:
            self._key = check_request(request)
        except HandshakeError as exc:
            self._reject(exc)
            return
        scope = build_websocket_scope(
            conn=request.conn,
            http_version=request.http_version,
            target=request.target,
            headers=[(name, value) for name, value in request.headers if not name.startswith(b":")],
            root_path=self.config.root_path,
            state=self.context.state,
            extensions={name: dict(value) for name, value in _EXTENSIONS.items()},
        )
        # A connection made while the server drains is served like the others: WebSockets carry on until
        # `going_away()`.
        self.session = WebSocketSession(self, scope, self.context, request.method)
        self.session.start()

    def data_received(self, data: bytes) -> None:
        if self._ws is None:
            if self.session is not None and self.session.state is SessionState.HANDSHAKE:
                # Frames sent before our answer wait for it (and are dropped if the app refuses).
                self._early_data += data
                if len(self._early_data) > _EARLY_DATA_LIMIT:
                    self.flow.pause_reading("handshake")
            return
        if self._failed or self._ws.state is WS_CLOSED:
            # The connection is going and what the peer still sends has no one to go to. It is read, so that
            # the peer's hang-up is seen and our close frame is not lost to a reset, but only up to a bound: a
            # peer that keeps flooding after the close is dropped rather than read for the close timeout.
            self._discarded += len(data)
            if self._discarded > _DISCARD_LIMIT:
                self._drop()
            return
        self._receive(data)

    def eof_received(self) -> bool:
        # A peer that hangs up without a close frame is an abnormal closure (1006): close our side too.
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        timers = self._ping_deadline, self._pong_deadline, self._close_deadline, self._send_deadline
        for deadline in (*timers, self._violation_deadline):
            deadline.close()  # releases the loop's timers (and this protocol) now
        self.context.connections.discard(self)
        self.flow.connection_lost()
        # The session outlives the connection while its app runs and keeps this protocol: let go, or it is a cycle.
        session, self.session = self.session, None
        if session is not None:
            code, reason = self._sent_close or (1006, "")
            session.connection_closed(code, reason)

    def pause_writing(self) -> None:
        # Above the high-water mark nothing more is read, control frames included: a peer that sends pings
        # and never reads the pongs would otherwise grow the buffer without bound. One that takes none of its
        # bytes for the ping timeout is dropped.
        self.flow.pause_writing()
        self.flow.pause_reading("write")
        self._send_deadline.arm(self.config.websocket_ping_timeout)

    def resume_writing(self) -> None:
        self._send_deadline.cancel()
        self.flow.resume_writing()
        self.flow.resume_reading("write")
        self._loop.call_soon(self._read_on)

    # ---- ServerConnection ----------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Step 1 of the drain: a WebSocket carries on (an unanswered handshake is still served)."""

    def going_away(self) -> None:
        """Step 2: close with 1001 (1012 when the server restarts), tell the app at once, and hang up within
        `CLOSE_TIMEOUT` whether or not the peer answers. An unanswered handshake gets that close right after
        the app accepts it."""
        code, reason = self._shutdown_close()
        if self._ws is not None:
            self.close(code, reason)
            if self.session is not None:
                self.session.connection_closed(code, reason)
        elif self.session is not None and self.session.state is SessionState.HANDSHAKE:
            self._pending_shutdown = (code, reason)

    def _shutdown_close(self) -> tuple[int, str]:
        if self.context.restarting:
            return 1012, "server restarting"
        return 1001, "server shutting down"

    # ---- Wire: called by the session -----------------------------------------------------------------

    def accept(self, subprotocol: str | None, headers: Headers) -> int:
        offer = negotiate_deflate(self.request.headers) if self.config.websocket_per_message_deflate else None
        status, answer = answer_headers(
            self._key, subprotocol, offer.response() if offer else None, with_server_headers(headers, self.context)
        )
        if self.tunnelled:
            cast("StreamTransport", self.transport).send_head(status, answer)
        else:
            self._write(http1_head(status, answer))
        budget = MessageBudget(self.config.websocket_max_message_size)
        extensions: list[Extension] = [PerMessageDeflate(offer, budget)] if offer is not None else []
        extensions.append(MessageSizeLimit(budget, compressed=offer is not None))  # after deflate: inflated bytes
        self._ws = Connection(ConnectionType.SERVER, extensions)
        # With permessage-deflate in use, every frame goes through wsproto and the extension.
        self._uncompressed = offer is None
        if offer is None:
            self._frames = FrameReader(self.config.websocket_max_message_size)
        self._last_received = self._loop.time()
        self._schedule_ping(self.config.websocket_ping_interval)
        if self._pending_shutdown is not None:
            self.going_away()
        early, self._early_data = bytes(self._early_data), bytearray()
        self.flow.resume_reading("handshake")
        if early and self._ws.state is WS_OPEN:
            self._receive(early)
        return status

    def response_writer(self) -> ResponseWriter:
        return make_writer(self.transport, self.flow, tunnelled=self.tunnelled)

    def send_message(self, data: str | bytes) -> None:
        ws = self._ws
        if ws is None or ws.state is not WS_OPEN or self.transport.is_closing():
            raise ClientDisconnected("the WebSocket is closed")
        if self._uncompressed:
            self._write(data_frame(data))  # what wsproto would write, without its event object
            return
        event = TextMessage(data=data) if isinstance(data, str) else BytesMessage(data=data)
        self._write(ws.send(event))

    def close(self, code: int, reason: str) -> None:
        ws = self._ws
        if self.session is not None:
            self.session.closing()
        if ws is None or ws.state is not WS_OPEN:
            return
        self._write(ws.send(CloseConnection(code=code, reason=reason)))
        self._sent_close = (code, reason)
        self._cancel_keepalive()
        self._close_deadline.arm(CLOSE_TIMEOUT)

    def queue_drained(self) -> None:
        self._read_on()
        if self.session is not None and not self.session.queue_full:
            self.flow.resume_reading("queue")

    def caught_up(self) -> None:
        """The app took every message that came before a protocol violation: fail once it has answered."""
        if self._violation is not None:
            self._loop.call_soon(self._fail_violation)

    # ---- frames --------------------------------------------------------------------------------------

    def _receive(self, data: bytes) -> None:
        assert self._ws is not None  # noqa: S101 - only called once the frame layer exists
        self._last_received = self._loop.time()
        if self._awaiting_pong:  # anything from the peer shows it is alive
            self._awaiting_pong = False
            self._pong_deadline.cancel()
        frames = self._frames
        if frames is None:
            self._ws.receive_data(data)
        else:
            frames.feed(data)
        if not self.flow.write_paused:  # else kept until the peer takes its bytes (`resume_writing`)
            self._process_events()

    def _read_common_frames(self, frames: FrameReader, session: WebSocketSession) -> int:
        """Deliver what `frames` reads; the frames left in this slice, or -1 when reading has to stop here
        (the queue filled up, or the slice is used up: the rest waits in `frames`)."""
        budget = FRAMES_PER_SLICE
        try:
            while (message := frames.next_message()) is not None:
                budget -= 1
                if session.accepting_messages:  # else the app has closed: what comes is not for it
                    if isinstance(message, str):
                        session.deliver({"type": "websocket.receive", "text": message})
                    else:
                        session.deliver({"type": "websocket.receive", "bytes": message})
                    if session.queue_full:
                        self.flow.pause_reading("queue")
                        return -1
                if not budget:
                    self._end_slice()
                    return -1
        except HandOff:
            self._frames = None
            assert self._ws is not None  # noqa: S101 - frames are read only once the frame layer exists
            self._ws.receive_data(frames.take_rest())
        return budget

    def _process_events(self) -> None:
        ws, session = self._ws, self.session
        assert ws is not None  # noqa: S101 - events flow only once the frame layer exists
        assert session is not None  # noqa: S101
        budget = FRAMES_PER_SLICE
        frames = self._frames
        if frames is not None:
            budget = self._read_common_frames(frames, session)
            if budget < 0 or self._frames is not None:
                return
        # Leaving this loop early loses nothing: wsproto keeps unparsed bytes and parser state between calls.
        for event in ws.events():
            budget -= 1
            if isinstance(event, (TextMessage, BytesMessage)):
                self._on_data(event)
                if session.queue_full:
                    self.flow.pause_reading("queue")
                    return
            elif isinstance(event, Ping):
                if ws.state is WS_OPEN:
                    self._write(ws.send(event.response()))
                    if self.flow.write_paused:
                        return  # reading is paused until the peer takes its pongs: `resume_writing` goes on
            elif isinstance(event, CloseConnection):
                self._on_close(event)
                return
            if budget <= 0:
                self._end_slice()
                return

    def _end_slice(self) -> None:
        """This connection had its share of the loop: the rest of what it sent waits for the next iteration."""
        self.flow.pause_reading("slice")
        self._loop.call_soon(self._next_slice)

    def _next_slice(self) -> None:
        self.flow.resume_reading("slice")
        self._read_on()

    def _read_on(self) -> None:
        """Process what was received but left unread (after a slice, a full queue or a full write buffer)."""
        ws, session = self._ws, self.session
        if ws is None or session is None or self._failed or ws.state is WS_CLOSED or self.transport.is_closing():
            return
        if self.flow.write_paused or session.queue_full:
            return
        self._process_events()

    def _on_data(self, event: TextMessage | BytesMessage) -> None:
        session = self.session
        assert session is not None  # noqa: S101
        if not session.accepting_messages:
            self._text_parts.clear()
            self._byte_parts.clear()
            return  # the app has closed: what the peer sends while it answers is not for the app
        if isinstance(event, TextMessage):
            self._text_parts.append(event.data)
            if event.message_finished:
                text = "".join(self._text_parts)
                self._text_parts.clear()
                session.deliver({"type": "websocket.receive", "text": text})
        else:
            self._byte_parts.append(event.data)
            if event.message_finished:
                parts = self._byte_parts
                data = bytes(parts[0]) if len(parts) == 1 else b"".join(parts)
                self._byte_parts.clear()
                session.deliver({"type": "websocket.receive", "bytes": data})

    def _on_close(self, event: CloseConnection) -> None:
        ws, session = self._ws, self.session
        assert ws is not None  # noqa: S101 - events flow only once the frame layer exists
        assert session is not None  # noqa: S101
        code, reason = int(event.code), event.reason or ""
        if ws.state is WS_REMOTE_CLOSING:
            # The peer closes: echo its code, then close the TCP connection (the server's job, RFC 6455 7.1.1).
            self._write(ws.send(event.response()))
        elif ws.state is not WS_CLOSED:
            # wsproto reports a peer's protocol violation as a close event no frame carried.
            self._on_violation(code, _FAILURE_REASONS.get(code, reason))
            return
        session.closing()
        session.connection_closed(code, reason)
        self._cancel_timers()
        # The FIN now, not at the loop's next turn (see `close_now`); a tunnel's stream does not own its socket.
        proxy = self.request.proxy
        close_now(self.transport, None if proxy is None or self.tunnelled else proxy.sock)

    def _on_violation(self, code: int, reason: str) -> None:
        """The peer broke the protocol: nothing it sent after that is processed; the app answers what came
        before (an echo of the message just delivered goes out first, as Autobahn's strict cases expect),
        then the connection fails. An app that is slow to take those messages gets `VIOLATION_GRACE`."""
        self._failed = True
        self._violation = (code, reason)
        self.flow.pause_reading("violation")
        session = self.session
        if session is not None and session.accepting_messages and session.wait_caught_up():
            self._violation_deadline.arm(VIOLATION_GRACE)
        else:
            self._loop.call_soon(self._fail_violation)

    def _fail_violation(self) -> None:
        violation, self._violation = self._violation, None
        self._violation_deadline.close()
        if violation is not None and not self.transport.is_closing():
            # Read again (and discard): the peer's own close or hang-up after our close frame is then seen.
            self.flow.resume_reading("violation")
            self._fail(*violation)

    def _send_timed_out(self) -> None:
        # The peer took none of our bytes for the ping timeout: no close frame can reach it.
        self.context.logger.debug("WebSocket peer stopped reading: connection dropped")
        self._failed = True
        self._drop()

    def _fail(self, code: int, reason: str, *, drop: bool = False) -> None:
        """Fail the WebSocket connection (RFC 6455 section 7.1.7): a close frame with `code`, then hang up."""
        ws, session = self._ws, self.session
        self._failed = True
        self._cancel_timers()
        if ws is not None and ws.state is WS_OPEN:
            self._write(ws.send(CloseConnection(code=code, reason=reason)))
        if session is not None:
            session.closing()
            session.connection_closed(code, reason)
        if drop:
            self._drop()
            return
        can_write_eof = getattr(self.transport, "can_write_eof", None)
        if callable(can_write_eof) and can_write_eof():
            self._eof_written = True
            self.transport.write_eof()  # type: ignore[attr-defined]
            self._close_deadline.arm(CLOSE_TIMEOUT)
        else:
            self.transport.close()

    # ---- keepalive and timers ------------------------------------------------------------------------

    def _schedule_ping(self, delay: float | None) -> None:
        self._ping_deadline.arm(delay)

    def _ping_due(self) -> None:
        ws, interval = self._ws, self.config.websocket_ping_interval
        if ws is None or interval is None or ws.state is not WS_OPEN:
            return
        idle = self._loop.time() - self._last_received
        if idle < interval:
            self._schedule_ping(interval - idle)  # the peer spoke recently: it is not idle
            return
        # One ping at a time; and none while we are not reading (the app is behind): its pong could not be seen.
        if not self._awaiting_pong and not self.flow.reading_paused:
            self._write(ws.send(Ping(payload=os.urandom(4))))
            timeout = self.config.websocket_ping_timeout
            self._awaiting_pong = timeout is not None
            self._pong_deadline.arm(timeout)
        self._schedule_ping(interval)

    def _pong_missing(self) -> None:
        self._awaiting_pong = False
        if self.flow.reading_paused:
            return  # the pong may be waiting in the bytes we have not read
        self._fail(1011, "keepalive ping timeout", drop=True)

    def _close_timed_out(self) -> None:
        if self.session is not None and self._sent_close is not None:
            self.session.connection_closed(*self._sent_close)
        self._drop()

    def _cancel_keepalive(self) -> None:
        self._ping_deadline.cancel()
        self._pong_deadline.cancel()
        self._awaiting_pong = False

    def _cancel_timers(self) -> None:
        self._cancel_keepalive()
        self._close_deadline.cancel()

    # ---- helpers -------------------------------------------------------------------------------------

    def _reject(self, exc: HandshakeError) -> None:
        self.context.logger.debug("WebSocket handshake rejected with %d: %s", exc.status, exc)
        reject(self.response_writer(), exc, self.context)

    def _write(self, data: bytes | bytearray) -> None:
        if data and not self._eof_written and not self.transport.is_closing():
            self.transport.write(data)

    def _drop(self) -> None:
        """Close without waiting for buffered data to reach a peer that is not taking it."""
        self._close_deadline.cancel()
        abort = getattr(self.transport, "abort", None)
        if callable(abort):
            abort()
        else:
            self.transport.close()
