"""uWSGI connections: parser events in, one asgi-core request cycle out, then the connection closes.

Connection lifecycle (`_Phase`): a peer outside `uwsgi_allow_ips` is closed at once. Otherwise HEAD (waiting
for the packet header and variables, under `header_timeout`) -> REQUEST (the app runs; the body is streamed
to it with read pauses as backpressure) -> LINGER (the response is out but nginx may still be sending body
the app did not read: our write side is shut so nginx sees the response end, and the rest of the body is read
and dropped, so closing cannot reset the connection under the response) -> closed. One request per
connection: nginx never reuses a uWSGI upstream connection, and the response body is framed by the close.

Draining (asgi-core's `ServerConnection`): `shutdown()` leaves a request in flight alone (its response ends
the connection anyway) and a packet whose bytes are arriving is served; a connection without a byte yet is
most likely one whose request nginx is writing right now (nginx opens a connection per request), so it gets
`drain_idle_grace` for its packet to start and is closed only if it stays idle. `going_away()` tells the app
`http.disconnect` at once and closes, with a reset under a response that has not all left (nginx must see an
error, not a body ended by a clean close).

Broken packets and refused peers are closed without a response (nginx then answers 502) and logged; requests
that parse but cannot be served (no method, over a limit, a WebSocket handshake) get a plain-text error.

Hot module: this code runs for every request (its speed tricks: docs/discussion/design.md, "Speed").
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import socket
import struct

from asgi_core import (
    ConnectionInfo,
    Deadline,
    FlowControl,
    HeadRejected,
    ProxyHeader,
    RequestCycle,
    ServerContext,
    Transport,
    close_now,
    peer_in,
)

from ._packet import MAX_VARS_SIZE, Body, EndOfRequest, ModifierRefused, ParseError, Request
from ._parser import CLOSED, UwsgiParser
from ._scope import request_scope
from ._writer import UwsgiResponseWriter, error_response

#: The `modifier1` values served: 0, what nginx sends unless `uwsgi_modifier1` says otherwise, and 30, whose
#: PATH_INFO still holds SCRIPT_NAME (the scope's path includes root_path either way). Others ask for another
#: kind of application or are not requests at all: the connection is closed, and the refusal logged.
SERVED_MODIFIER1 = (0, 30)
#: Longest wait for the body the app did not read, after its response, before closing regardless.
LINGER_TIMEOUT = 5.0
#: SO_LINGER on with a zero timeout: close() sends a reset instead of a FIN.
_RESET_ON_CLOSE = struct.pack("ii", 1, 0)


class _Phase(enum.Enum):
    HEAD = "waiting for the request packet"
    REQUEST = "serving the request"
    LINGER = "draining unread request body"
    CLOSED = "closed"


class UwsgiProtocol(asyncio.Protocol):
    """An `asyncio.Protocol` serving ASGI over the uWSGI protocol. One per connection:
    `UwsgiProtocol(context)`; `max_vars_size` bounds the packet's variables block (64 KiB at most)."""

    transport: Transport
    flow: FlowControl

    def __init__(
        self, context: ServerContext, *, max_vars_size: int = MAX_VARS_SIZE, proxy: ProxyHeader | None = None
    ) -> None:
        self._proxy = proxy
        self.context = context
        self.config = context.config
        self.parser = UwsgiParser(max_vars_size=max_vars_size, modifier1=SERVED_MODIFIER1)
        self.cycle: RequestCycle | None = None
        self.phase = _Phase.HEAD
        self._conn_info: ConnectionInfo
        self._peer = "?"
        self._loop = context.loop or asyncio.get_running_loop()
        # One deadline per phase: the packet head (header_timeout, or drain_idle_grace while draining and no
        # byte has come), then the linger after the response.
        self._deadline = Deadline(self._loop, self._on_deadline)
        self._idle = True  # no byte received yet
        self._draining = False

    # ---- asyncio.Protocol ----------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.flow = FlowControl(self.transport)
        self._conn_info = ConnectionInfo.from_transport(self.transport, self._proxy)
        client = self._conn_info.client
        if client is None:
            self._peer = "a unix socket"
        else:
            self._peer = f"[{client[0]}]:{client[1]}" if ":" in client[0] else f"{client[0]}:{client[1]}"
        if not peer_in(self.config.uwsgi_networks, client):
            self.context.logger.warning(
                "uWSGI connection from %s refused: not in uwsgi_allow_ips %s",
                self._peer,
                ", ".join(self.config.uwsgi_allow_ips),
            )
            self.phase = _Phase.CLOSED
            self.transport.close()
            return
        set_limits = getattr(transport, "set_write_buffer_limits", None)
        if set_limits is not None:
            set_limits(high=self.config.write_buffer_high_water)
        self.context.connections.add(self)
        self._deadline.arm(self.config.header_timeout)
        if self.context.draining:
            self.shutdown()  # made after the drain started: it starts in step 1

    def data_received(self, data: bytes) -> None:
        if self.phase is _Phase.CLOSED:
            return
        if self._idle:
            self._idle = False
            if self._draining and self.phase is _Phase.HEAD:
                self._deadline.arm(self.config.header_timeout)  # a packet is arriving: it gets its whole time
        if self.phase is _Phase.REQUEST and not self.parser.in_body:
            return  # bytes after the request: nothing follows a request on this wire, and they are dropped
        self.parser.receive_data(data)
        self._handle_events()

    def eof_received(self) -> bool:
        if self.phase is _Phase.HEAD:
            self.parser.receive_data(b"")
            self._handle_events()  # a clean close before any byte, or a truncated packet to report
        elif self.phase is _Phase.REQUEST and self.cycle is not None:
            # nginx closes its side only when it gives up on the request (its client went away, a timeout):
            # the app hears http.disconnect, and nothing more can reach nginx.
            self.cycle.connection_lost()
        self._close()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.phase = _Phase.CLOSED
        self._deadline.close()
        self.context.connections.discard(self)
        self.flow.connection_lost()
        # The cycle's writer keeps this protocol: let go of the cycle, or the two stay a reference cycle.
        cycle, self.cycle = self.cycle, None
        if cycle is not None:
            cycle.connection_lost()

    def pause_writing(self) -> None:
        self.flow.pause_writing()

    def resume_writing(self) -> None:
        self.flow.resume_writing()

    # ---- ServerConnection ----------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Step 1 of the drain: a request in flight finishes, a packet arriving is served, and a connection
        that has not sent a byte closes unless its packet starts within `drain_idle_grace`."""
        self._draining = True
        if self.phase is _Phase.HEAD and self._idle:
            self._deadline.arm(self.config.drain_idle_grace)

    def going_away(self) -> None:
        """Step 2: the app hears `http.disconnect` now, not once a slow reader has taken the response, and the
        connection closes: with a reset if part of a response is still unsent or unwritten."""
        if self.phase is _Phase.CLOSED:
            return
        cycle = self.cycle
        if cycle is not None:
            cycle.connection_lost()
        unfinished = self.phase is _Phase.REQUEST and cycle is not None and cycle.response_started
        buffered = getattr(self.transport, "get_write_buffer_size", None)
        if unfinished or (buffered is not None and buffered() > 0):
            self.abort()
        else:
            self._close()

    # ---- events --------------------------------------------------------------------------------------

    def _handle_events(self) -> None:
        parser = self.parser
        while self.phase is not _Phase.CLOSED:
            try:
                event = parser.next_event()
            except ModifierRefused as exc:
                self._drop(f"uWSGI packet refused: {exc}; set `uwsgi_modifier1 0;` (or leave it out) in nginx")
                return
            except ParseError as exc:
                self._drop(f"malformed uWSGI packet: {exc}")
                return
            if isinstance(event, Body):
                self._on_body(event.data)
            elif isinstance(event, Request):
                self._on_request(event)
            elif isinstance(event, EndOfRequest):
                self._on_end_of_body()
                return
            else:  # NEED_DATA, or CLOSED: the peer closed before sending anything
                if event is CLOSED:
                    self._close()
                return

    def _on_request(self, request: Request) -> None:
        self._deadline.cancel()
        self.phase = _Phase.REQUEST
        try:
            scope = request_scope(request, self._conn_info, self.context)
        except HeadRejected as exc:  # well formed, but not a request we serve
            self.context.logger.info("uWSGI request from %s answered %d: %s", self._peer, exc.status, exc)
            self.transport.write(error_response(exc.status, str(exc)))
            self.response_complete()
            return
        writer = UwsgiResponseWriter(
            self,
            sendfile=self._conn_info.tls is None and isinstance(self._loop, asyncio.BaseEventLoop),
            head_request=scope["method"] == "HEAD",
        )
        cycle = RequestCycle(
            scope,
            writer,
            self.context,
            content_length=request.content_length,
            body_expected=request.content_length > 0,
        )
        self.cycle = cycle
        cycle.task = self._loop.create_task(cycle.run())

    def _on_end_of_body(self) -> None:
        if self.phase is _Phase.LINGER:
            self._close()
        elif self.cycle is not None:
            self.cycle.end_body()

    def _on_body(self, data: bytes) -> None:
        # A rejected request's or a finished response's body is read only to be dropped.
        cycle = self.cycle
        if self.phase is _Phase.REQUEST and cycle is not None and cycle.feed_body(data):
            self.flow.pause_reading("body")

    # ---- called by the writer ------------------------------------------------------------------------

    def body_consumed(self) -> None:
        self.flow.resume_reading("body")

    def response_complete(self) -> None:
        if self.phase is not _Phase.REQUEST:
            return
        if not self.parser.in_body or self.transport.is_closing():
            self._close()
            return
        self.phase = _Phase.LINGER
        can_write_eof = getattr(self.transport, "can_write_eof", None)
        if can_write_eof is not None and can_write_eof():
            self.transport.write_eof()  # type: ignore[attr-defined]
        self.flow.resume_reading("body")
        self._deadline.arm(LINGER_TIMEOUT)

    def abort(self) -> None:
        """Cut the response so that nginx sees an error (a reset), not a short body ended by a clean close."""
        self.phase = _Phase.CLOSED
        self._deadline.close()
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET_ON_CLOSE)
        abort = getattr(self.transport, "abort", None)
        if abort is not None:
            abort()
        else:
            self.transport.close()

    # ---- internals -----------------------------------------------------------------------------------

    def _drop(self, reason: str) -> None:
        self.context.logger.warning("uWSGI connection from %s closed: %s", self._peer, reason)
        self._close()

    def _close(self) -> None:
        self.phase = _Phase.CLOSED
        self._deadline.close()
        if not self.transport.is_closing():
            # The response's end is the connection's: nginx waits for the FIN, so it goes out now.
            proxy = self._proxy
            close_now(self.transport, None if proxy is None else proxy.sock)

    def _on_deadline(self) -> None:
        if self.phase is _Phase.LINGER:
            self._close()
        elif self.phase is _Phase.HEAD:
            if self._draining and self._idle:
                self.context.logger.debug("uWSGI connection from %s closed: idle while draining", self._peer)
                self._close()
            else:
                self._drop(f"no complete request packet within header_timeout ({self.config.header_timeout} s)")

    def __repr__(self) -> str:
        return f"<UwsgiProtocol {self._peer} {self.phase.value}>"
