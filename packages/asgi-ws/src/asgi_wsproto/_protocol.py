"""One WebSocket connection on the wire: the handshake answer, wsproto's frame layer, keepalive, closing.

A connection is handed over from HTTP/1.1 (`Upgrade: websocket`; the transport is the TCP/TLS connection) or
from HTTP/2 (extended CONNECT, RFC 8441; the transport is a `StreamTransport` for one stream). Both take the
same path: the request is checked, the app runs in a `WebSocketSession`, and when it accepts, the answer goes
out as raw HTTP/1.1 bytes or through `send_head`, after which wsproto's frame layer carries the messages.

Closing, as RFC 6455 section 7 has it: whoever closes first sends a close frame and waits (at most
`CLOSE_TIMEOUT`) for the other's; the server then closes the TCP connection. A peer that breaks the protocol
gets a close frame with the reason (1002, 1007, 1009) and a half-close, so it reads that frame before the
connection goes, instead of losing it to a reset caused by its own unread data.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, cast

from asgi_core import (
    ClientDisconnected,
    FlowControl,
    Headers,
    ResponseWriter,
    ServerContext,
    StreamTransport,
    Transport,
    UpgradeRequest,
    build_websocket_scope,
    http_date,
)
from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage
from wsproto.extensions import Extension

from ._extensions import MessageBudget, MessageSizeLimit, PerMessageDeflate, negotiate_deflate
from ._frames import FrameReader, HandOff, data_frame
from ._handshake import HandshakeError, answer_headers, check_request
from ._responder import http1_head, make_writer, simple_response
from ._session import SessionState, WebSocketSession

#: Seconds the peer has to answer our close frame (or to hang up after we failed the connection).
CLOSE_TIMEOUT = 5.0
#: Bytes a client may send before its handshake is answered; past that, reading pauses until it is.
_EARLY_DATA_LIMIT = 64 * 1024
_EXTENSIONS: dict[str, Any] = {"websocket.http.response": {}}
_FAILURE_REASONS = {1009: "message too big", 1007: "invalid payload data"}
# Python 3.11 finds an Enum member through `EnumType.__getattr__` (some 75 ns, against 10 for a global):
# the hot paths name members through module-level names instead.
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
        self.tunnelled = request.http_version == "2"
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
        self._ping_timer: asyncio.TimerHandle | None = None
        self._pong_timer: asyncio.TimerHandle | None = None
        self._close_timer: asyncio.TimerHandle | None = None
        self._sent_close: tuple[int, str] | None = None
        self._pending_shutdown: tuple[int, str] | None = None
        self._failed = False
        self._eof_written = False

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
        self.session = WebSocketSession(self, scope, self.context, request.method)
        if self.context.draining:
            self._pending_shutdown = self._shutdown_close()
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
            return  # the connection is going; what the peer still sends has no one to go to
        self._receive(data)

    def eof_received(self) -> bool:
        # A peer that hangs up without a close frame is an abnormal closure (1006): close our side too.
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        self.context.connections.discard(self)
        self.flow.connection_lost()
        if self.session is not None:
            code, reason = self._sent_close or (1006, "")
            self.session.connection_closed(code, reason)

    def pause_writing(self) -> None:
        self.flow.pause_writing()

    def resume_writing(self) -> None:
        self.flow.resume_writing()

    # ---- ServerConnection ----------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Graceful stop: close with 1001 (1012 when the server restarts); an unanswered handshake gets that
        close right after the app accepts it."""
        if self._ws is not None:
            self.close(*self._shutdown_close())
        elif self.session is not None and self.session.state is SessionState.HANDSHAKE:
            self._pending_shutdown = self._shutdown_close()

    def going_away(self) -> None:
        self.shutdown()

    def _shutdown_close(self) -> tuple[int, str]:
        if self.context.restarting:
            return 1012, "server restarting"
        return 1001, "server shutting down"

    # ---- Wire: called by the session -----------------------------------------------------------------

    def accept(self, subprotocol: str | None, headers: Headers) -> int:
        offer = negotiate_deflate(self.request.headers) if self.config.websocket_per_message_deflate else None
        status, answer = answer_headers(
            self._key, subprotocol, offer.response() if offer else None, self._with_server_headers(headers)
        )
        if self.tunnelled:
            cast("StreamTransport", self.transport).send_head(status, answer)
        else:
            self._write(http1_head(status, answer))
        budget = MessageBudget(self.config.websocket_max_message_size)
        extensions: list[Extension] = [PerMessageDeflate(offer, budget)] if offer is not None else []
        extensions.append(MessageSizeLimit(budget))  # after deflate: it counts inflated bytes
        self._ws = Connection(ConnectionType.SERVER, extensions)
        # With permessage-deflate in use, every frame goes through wsproto and the extension.
        self._uncompressed = offer is None
        if offer is None:
            self._frames = FrameReader(self.config.websocket_max_message_size)
        self._last_received = self._loop.time()
        self._schedule_ping(self.config.websocket_ping_interval)
        if self._pending_shutdown is not None:
            self.close(*self._pending_shutdown)
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
        self._close_timer = self._loop.call_later(CLOSE_TIMEOUT, self._close_timed_out)

    def queue_drained(self) -> None:
        if self._ws is not None and not self._failed and self._ws.state is not WS_CLOSED:
            self._process_events()
        if self.session is not None and not self.session.queue_full:
            self.flow.resume_reading("queue")

    # ---- frames --------------------------------------------------------------------------------------

    def _receive(self, data: bytes) -> None:
        assert self._ws is not None  # noqa: S101 - only called once the frame layer exists
        self._last_received = self._loop.time()
        if self._pong_timer is not None:  # anything from the peer shows it is alive
            self._pong_timer.cancel()
            self._pong_timer = None
        frames = self._frames
        if frames is None:
            self._ws.receive_data(data)
        else:
            frames.feed(data)
        self._process_events()

    def _read_common_frames(self, frames: FrameReader, session: WebSocketSession) -> bool:
        """Deliver what `frames` reads; False when the session's queue filled up (reading is then paused)."""
        try:
            while (message := frames.next_message()) is not None:
                if not session.accepting_messages:
                    continue  # the app has closed: what the peer sends while it answers is not for the app
                if isinstance(message, str):
                    session.deliver({"type": "websocket.receive", "text": message})
                else:
                    session.deliver({"type": "websocket.receive", "bytes": message})
                if session.queue_full:
                    self.flow.pause_reading("queue")
                    return False
        except HandOff:
            self._frames = None
            assert self._ws is not None  # noqa: S101 - frames are read only once the frame layer exists
            self._ws.receive_data(frames.take_rest())
        return True

    def _process_events(self) -> None:
        ws, session = self._ws, self.session
        assert ws is not None  # noqa: S101 - events flow only once the frame layer exists
        assert session is not None  # noqa: S101
        frames = self._frames
        if frames is not None and (not self._read_common_frames(frames, session) or self._frames is not None):
            return
        # Leaving this loop early loses nothing: wsproto keeps unparsed bytes and parser state between calls.
        for event in ws.events():
            if isinstance(event, (TextMessage, BytesMessage)):
                self._on_data(event)
                if session.queue_full:
                    self.flow.pause_reading("queue")
                    return
            elif isinstance(event, Ping):
                if ws.state is WS_OPEN:
                    self._write(ws.send(event.response()))
            elif isinstance(event, CloseConnection):
                self._on_close(event)
                return

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
            self._fail(code, _FAILURE_REASONS.get(code, reason))
            return
        session.closing()
        session.connection_closed(code, reason)
        self._cancel_timers()
        self.transport.close()

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
            self._close_timer = self._loop.call_later(CLOSE_TIMEOUT, self._drop)
        else:
            self.transport.close()

    # ---- keepalive and timers ------------------------------------------------------------------------

    def _schedule_ping(self, delay: float | None) -> None:
        if delay is not None:
            self._ping_timer = self._loop.call_later(delay, self._ping_due)

    def _ping_due(self) -> None:
        self._ping_timer = None
        ws, interval = self._ws, self.config.websocket_ping_interval
        if ws is None or interval is None or ws.state is not WS_OPEN:
            return
        idle = self._loop.time() - self._last_received
        if idle < interval:
            self._schedule_ping(interval - idle)  # the peer spoke recently: it is not idle
            return
        # One ping at a time; and none while we are not reading (the app is behind): its pong could not be seen.
        if self._pong_timer is None and not self.flow.reading_paused:
            self._write(ws.send(Ping(payload=os.urandom(4))))
            timeout = self.config.websocket_ping_timeout
            if timeout is not None:
                self._pong_timer = self._loop.call_later(timeout, self._pong_missing)
        self._schedule_ping(interval)

    def _pong_missing(self) -> None:
        self._pong_timer = None
        if self.flow.reading_paused:
            return  # the pong may be waiting in the bytes we have not read
        self._fail(1011, "keepalive ping timeout", drop=True)

    def _close_timed_out(self) -> None:
        self._close_timer = None
        if self.session is not None and self._sent_close is not None:
            self.session.connection_closed(*self._sent_close)
        self._drop()

    def _cancel_keepalive(self) -> None:
        for timer in (self._ping_timer, self._pong_timer):
            if timer is not None:
                timer.cancel()
        self._ping_timer = self._pong_timer = None

    def _cancel_timers(self) -> None:
        self._cancel_keepalive()
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None

    # ---- helpers -------------------------------------------------------------------------------------

    def _reject(self, exc: HandshakeError) -> None:
        self.context.logger.debug("WebSocket handshake rejected with %d: %s", exc.status, exc)
        headers, body = simple_response(exc.status, str(exc), exc.headers)
        writer = self.response_writer()
        writer.start_response(exc.status, self._with_server_headers(headers))
        writer.send_data(body)
        writer.end_response(None)

    def _with_server_headers(self, headers: Headers) -> Headers:
        names = {name.lower() for name, _ in headers}
        extra: Headers = []
        if self.config.server_header and b"server" not in names:
            extra.append((b"server", self.context.server_name))
        if self.config.date_header and b"date" not in names:
            extra.append((b"date", http_date()))
        return [*headers, *extra]

    def _write(self, data: bytes | bytearray) -> None:
        if data and not self._eof_written and not self.transport.is_closing():
            self.transport.write(data)

    def _drop(self) -> None:
        """Close without waiting for buffered data to reach a peer that is not taking it."""
        self._close_timer = None
        abort = getattr(self.transport, "abort", None)
        if callable(abort):
            abort()
        else:
            self.transport.close()
