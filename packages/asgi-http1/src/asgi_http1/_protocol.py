"""HTTP/1.1 connections: engine events in, asgi-core request cycles out.

A connection is in one `Phase` at a time, and the phase decides what its one deadline means:

    AWAITING_HEAD --request--> IN_FLIGHT --response done--> IDLE ----bytes of a head----> AWAITING_HEAD
          ^                      |   |                       ^  +--next request parked--> IN_FLIGHT
          |                      |   +--write buffer full--> WRITE_BLOCKED --drained--+
          |                      +--body left unread-------> DISCARDING ---body read---+
          +--- (connection made)           any phase --close / going_away--> CLOSING

AWAITING_HEAD runs under the head deadline (`header_timeout`), IDLE under the keep-alive timeout or, once the
server drains, the drain's grace (`drain_idle_grace`); IN_FLIGHT and WRITE_BLOCKED run under the send deadline (`send_timeout`) while the client reads nothing.
Further pipelined requests wait in the engine's buffer, with reading paused past a head's worth of bytes, and
the next one starts only once the client has taken the previous response down to the write buffer's low-water
mark (WRITE_BLOCKED): a client that does not read costs at most the high-water mark plus one app message.
Anything the engine rejects gets its 4xx and a close; the app never sees it. The engine (`_engine.py`) reads
request heads with h11 or, when installed, the faster httptools parser; nothing else differs between the two.

Hot module: this code runs for every request and every read (its speed tricks: docs/discussion/design.md, "Speed").
"""

from __future__ import annotations

import asyncio
import enum
from typing import Any, Final

from asgi_core import (
    ConnectionInfo,
    Deadline,
    FlowControl,
    PeerError,
    ProxyHeader,
    RequestCycle,
    ServerContext,
    Transport,
    UpgradeRequest,
    apply_forwarded,
    build_http_scope,
    close_now,
)

from ._engine import Engine, EngineFactory, select_engine
from ._limits import check_head, error_response
from ._request import Request, Signal
from ._writer import HTTP1ResponseWriter

_HTTP_VERSIONS: Final = {b"1.1": "1.1", b"1.0": "1.0"}
_METHODS: Final = {
    method.encode("ascii"): method for method in ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")
}


class Phase(enum.Enum):
    """Where a connection is in its life (see the module doc for the transitions)."""

    AWAITING_HEAD = "waiting for a request head, under the head deadline"
    IDLE = "between requests, under the keep-alive timeout or the drain's grace"
    IN_FLIGHT = "a request is being answered"
    WRITE_BLOCKED = "the response is done; the next request waits for the client to read it"
    DISCARDING = "the response is done; the rest of a request body the app did not read is read and dropped"
    CLOSING = "the connection is closing or closed"

    __hash__ = object.__hash__


#: Once the drain's time is up, how long a closing connection may still flush what it has queued for a client
#: that does not read, before it is cut.
_GOING_AWAY_FLUSH: Final = 1.0

_BASE_EXTENSIONS: Final[dict[str, Any]] = {"http.response.pathsend": {}}
_HTTP11_EXTENSIONS: Final[dict[str, Any]] = {"http.response.pathsend": {}, "http.response.early_hint": {}}
_TRAILER_EXTENSIONS: Final[dict[str, Any]] = {**_HTTP11_EXTENSIONS, "http.response.trailers": {}}


class HTTP1Protocol(asyncio.Protocol):
    """An `asyncio.Protocol` serving ASGI over HTTP/1.1. Create one per connection: `HTTP1Protocol(context)`.

    `parser` picks the engine's head parser: "h11" (the reference), "httptools" or "auto" (httptools when
    installed); by default the `ASGI_HTTP1_PARSER` environment variable, else `Config.http1_parser`.
    """

    transport: Transport
    flow: FlowControl
    engine: Engine

    def __init__(
        self,
        context: ServerContext,
        parser: str | None = None,
        *,
        proxy: ProxyHeader | None = None,
        engines: EngineFactory | None = None,
    ) -> None:
        self.context = context
        self._proxy = proxy
        self.config = context.config
        # `engines`: chosen once per server by the plugin, rather than for each connection.
        self._engine_factory = engines or select_engine(parser, context.config.http1_parser)
        self.cycle: RequestCycle | None = None
        #: The response in flight, and any after it, says `Connection: close` and the connection then closes
        #: (the server is draining).
        self.closing_after_response = False
        self._conn_info: ConnectionInfo
        self.phase: Phase = Phase.AWAITING_HEAD
        self._parked_bytes = -1  # -1: not parked; else bytes received while a request is in flight
        self.loop = context.loop or asyncio.get_running_loop()
        # One deadline at a time; what it means depends on the phase (see `_deadline_passed`).
        self._deadline = Deadline(self.loop, self._deadline_passed)

    # ---- asyncio.Protocol ----------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.flow = FlowControl(self.transport)
        # By position, here and below: compiled, keywords into another package are parsed by name.
        self._conn_info = ConnectionInfo.from_transport(self.transport, self._proxy, self.context.tls)
        self._sendfile = self._conn_info.tls is None and isinstance(self.loop, asyncio.BaseEventLoop)
        self.engine = self._engine_factory(self.config)
        set_limits = getattr(transport, "set_write_buffer_limits", None)
        if set_limits is not None:
            set_limits(self.config.write_buffer_high_water)  # `high`
        self.context.connections.add(self)
        if self.context.draining:
            self.closing_after_response = True
        self.phase = Phase.AWAITING_HEAD
        head_deadlines = self.context.head_deadlines(self.loop)
        if head_deadlines is not None:
            # The first head's deadline waits on a timer the server's new connections share: most clients send
            # their head at once, and a loop timer of its own costs 6k instructions a connection more.
            self._deadline.arm_in(head_deadlines)

    def data_received(self, data: bytes) -> None:
        engine = self.engine
        if engine.input_finished:
            return  # RFC 9112 section 9.6: nothing after a request that closes the connection is processed
        phase = self.phase
        if phase is Phase.IN_FLIGHT or phase is Phase.WRITE_BLOCKED:
            if self._parked_bytes >= 0:
                # Pipelined bytes wait in the engine while a response is produced or read; past a head's worth,
                # stop reading.
                self._parked_bytes += len(data)
                if self._parked_bytes > self.config.max_head_size:
                    self.flow.pause_reading("pipelined")
            engine.receive_data(data)
            self._handle_events()
            return
        engine.receive_data(data)
        self._handle_events()
        if self._idle() and not self.transport.is_closing():
            # Part of a head, and it started in these bytes: the keep-alive wait is over, the head's begins.
            # (Armed after parsing, not before, so that a head that came whole never arms it.)
            self._arm_head_deadline()

    def _idle(self) -> bool:
        # A method rather than `self.phase is IDLE` inline: after a call that may change the phase, mypy still
        # narrows the attribute, and compiled (mypyc) code would trust that narrowing.
        return self.phase is Phase.IDLE

    def eof_received(self) -> bool:
        # A client may half-close once its request is sent; it still gets its response, then we close.
        self.engine.receive_data(b"")
        if self.cycle is not None:
            self.cycle.peer_closed()
        self._handle_events()
        # A response still to come: this one, or pipelined ones waiting for the client to read (WRITE_BLOCKED).
        pending = self.cycle is not None or self.phase is Phase.WRITE_BLOCKED
        if not pending and not self.transport.is_closing():
            self._close()
        # Keep the transport half-open only for that, and never over TLS: asyncio cannot keep a TLS transport
        # half-open, closes it all the same and logs a warning for every such connection.
        return pending and self._conn_info.tls is None

    def connection_lost(self, exc: Exception | None) -> None:
        self.phase = Phase.CLOSING
        self._deadline.close()
        self.context.connections.discard(self)
        self.flow.connection_lost()
        if self.cycle is not None:
            self.cycle.connection_lost()
            self.cycle = None

    def pause_writing(self) -> None:
        self.flow.pause_writing()
        phase = self.phase
        if phase is Phase.IN_FLIGHT or phase is Phase.WRITE_BLOCKED:
            # The send deadline: a client that reads nothing for send_timeout loses the connection.
            self._deadline.arm(self.config.send_timeout)

    def resume_writing(self) -> None:
        self.flow.resume_writing()
        if self.phase is Phase.IN_FLIGHT:
            self._deadline.cancel()
        elif self.phase is Phase.WRITE_BLOCKED:
            # The client took the previous response: the next pipelined request may start. Not from inside the
            # transport's write callback, which is about to look at its buffer again.
            self.loop.call_soon(self._write_unblocked)

    def _write_unblocked(self) -> None:
        if self.phase is Phase.WRITE_BLOCKED and not self.flow.write_paused:
            self._next_request()

    # ---- ServerConnection ----------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Step 1 of the drain: the response in flight (and any later one) says `Connection: close`. An idle
        connection is not closed under a client that may be sending its next request right now: it waits
        `drain_idle_grace` more, serves such a request, and closes if none came. One expecting a request head
        keeps the head deadline."""
        self.closing_after_response = True
        if self.phase is Phase.IDLE:
            self._deadline.arm(self.config.drain_idle_grace)

    def going_away(self) -> None:
        """Step 2 of the drain: a request still in flight sees `http.disconnect` now, whatever its app does
        next, and the connection closes, cut if its client does not take what is queued soon enough."""
        if self.phase is Phase.CLOSING:
            return
        self.phase = Phase.CLOSING
        cycle = self.cycle
        if cycle is not None:
            cycle.connection_lost()
        # An app waiting for the write buffer to drain wakes up too: its next send finds the request over.
        self.flow.connection_lost()
        self.transport.close()
        self._deadline.arm(_GOING_AWAY_FLUSH)

    # ---- events --------------------------------------------------------------------------------------

    def _handle_events(self) -> None:
        engine = self.engine
        transport = self.transport
        if engine.input_finished:
            return  # the request said `Connection: close`; what follows it is never a request
        while not transport.is_closing():
            try:
                event = engine.next_event()
                kind = type(event)
                if kind is Request:
                    check_head(event, self.config)  # type: ignore[arg-type]
            except PeerError as exc:
                self._reject(exc.status)
                return
            if kind is Request:
                self._on_request(event)  # type: ignore[arg-type]
                transport = self.transport  # an upgrade hands the real one over
                if event.complete:  # type: ignore[union-attr]
                    body = event.body  # type: ignore[union-attr]
                    cycle = self.cycle
                    if body is not None and cycle is not None:
                        self._on_body(body)
                        if self.cycle is cycle:  # unless the body was refused (413) and the connection closed
                            cycle.end_body()
                    if engine.input_finished:
                        return  # a whole request that said `Connection: close`: what follows is never a request
            elif kind is not Signal:
                self._on_body(event)  # type: ignore[arg-type]
            elif event is Signal.END_OF_MESSAGE:
                self._on_end_of_body()
                if engine.input_finished:
                    return  # as above: that was the last request
            elif event is Signal.NEED_DATA:
                return
            elif event is Signal.PAUSED:
                # The request is fully read; anything more is pipelined and waits for this response. Reading
                # goes on (that is how a vanished client is noticed) until the parked bytes grow too many.
                self._parked_bytes = max(self._parked_bytes, 0)
                return
            else:  # ConnectionClosed: the client closed its side
                if self.cycle is None:
                    self._close()
                return  # a request received whole still gets its response (half-close); then we close

    def _on_request(self, request: Request) -> None:
        self.phase = Phase.IN_FLIGHT
        self._deadline.cancel()
        headers = request.headers
        conn = apply_forwarded(self.config, self._conn_info, headers) if request.forwarded else self._conn_info
        http_version = _HTTP_VERSIONS.get(request.http_version, "1.1")
        method = _METHODS.get(request.method) or request.method.decode("ascii")

        if request.upgrade is not None and self._try_upgrade(
            request.upgrade, request, headers, conn, http_version
        ):
            return

        is_11 = http_version == "1.1"
        trailers = is_11 and request.te_trailers
        extensions = _TRAILER_EXTENSIONS if trailers else _HTTP11_EXTENSIONS if is_11 else _BASE_EXTENSIONS
        # Positional, here and below: a call with keywords into another compiled package parses them by name (2k
        # instructions).
        scope = build_http_scope(
            conn,
            method,
            http_version,
            request.target,
            headers,
            self.config.root_path,
            self.context.state,
            extensions.copy(),
        )
        writer = HTTP1ResponseWriter(self, trailers=trailers, informational=is_11, sendfile=self._sendfile)
        cycle = RequestCycle(scope, writer, self.context, request.content_length, request.body_expected)
        self.cycle = cycle
        cycle.task = self.loop.create_task(cycle.run())

    def _on_body(self, data: bytes) -> None:
        cycle = self.cycle
        if cycle is None or self.phase is Phase.DISCARDING:
            return
        if cycle.feed_body(data):
            self.flow.pause_reading("body")

    def _on_end_of_body(self) -> None:
        if self.phase is Phase.DISCARDING:
            self._next_request()
        elif self.cycle is not None:
            self.cycle.end_body()

    def _try_upgrade(
        self,
        token: bytes,
        request: Request,
        headers: list[tuple[bytes, bytes]],
        conn: ConnectionInfo,
        version: str,
    ) -> bool:
        registry = self.context.registry
        if registry is None:
            return False
        handler = None
        # RFC 9110 section 7.8: a list in order of preference, each "name" or "name/version"; the first one
        # with a registered handler wins.
        for offered in token.decode("latin-1").split(","):
            name = offered.strip()
            handler = registry.upgrade(name) or registry.upgrade(name.partition("/")[0])
            if handler is not None:
                break
        if handler is None:
            return False
        upgrade = UpgradeRequest(
            method=request.method.decode("ascii"),
            target=request.target,
            http_version=version,
            headers=headers,
            conn=conn,
            leftover=self.engine.trailing_data,
            config=self.config,
            proxy=self._proxy,
        )
        if not handler.accepts(upgrade):
            return False
        # Explicit hand-off: the new protocol owns the transport from here, leftover bytes included.
        self.phase = Phase.CLOSING
        self._deadline.close()
        self.context.connections.discard(self)
        protocol = handler.create_protocol(self.context, upgrade)
        self.transport.set_protocol(protocol)  # type: ignore[attr-defined]
        protocol.connection_made(self.transport)  # type: ignore[arg-type]
        if upgrade.leftover:
            protocol.data_received(upgrade.leftover)
        self.transport = _DetachedTransport()  # type: ignore[assignment]
        return True

    # ---- called by the writer ------------------------------------------------------------------------

    def body_consumed(self) -> None:
        self.flow.resume_reading("body")

    def response_complete(self) -> None:
        engine = self.engine
        if engine.must_close or self.closing_after_response:
            self._close()
            return
        self.cycle = None
        if engine.request_complete:
            if self.flow.write_paused:
                # The client has not taken this response yet: the next request waits until it has (see
                # `resume_writing`), so that one that does not read holds at most a write buffer's worth.
                self.phase = Phase.WRITE_BLOCKED
                self._parked_bytes = max(self._parked_bytes, 0)
            else:
                self._next_request()
        elif engine.receiving_body:
            # The app answered without reading the whole body: read and drop the rest to keep the connection,
            # but only as long as an idle connection is kept (a client may never send the body it announced).
            self.phase = Phase.DISCARDING
            self._deadline.arm(self.config.keep_alive_timeout)
            self.flow.resume_reading("body")
        else:
            self._close()

    def abort(self) -> None:
        self._close()

    # ---- internals -----------------------------------------------------------------------------------

    def _next_request(self) -> None:
        self.engine.start_next_cycle()
        pipelined = self._parked_bytes >= 0
        self._parked_bytes = -1
        self.phase = Phase.IDLE
        # Draining, the next request may still come within the grace (then it is answered with `Connection:
        # close`); otherwise the keep-alive timeout.
        config = self.config
        self._deadline.arm(config.drain_idle_grace if self.closing_after_response else config.keep_alive_timeout)
        if self.flow.reading_paused:
            self.flow.resume_reading("body")
            self.flow.resume_reading("pipelined")
        if pipelined:
            self._handle_events()  # the next request is buffered already

    def _reject(self, status: int) -> None:
        """Answer a broken or over-limit request and close; a response already under way is cut instead."""
        cycle = self.cycle
        if (cycle is not None and cycle.response_started) or self.phase is Phase.DISCARDING:
            self._close()  # a response is (or was just) on the wire: an error reply would corrupt it
            return
        self.transport.write(error_response(status))
        self._close()
        if cycle is not None:
            cycle.connection_lost()
            self.cycle = None

    def _close(self) -> None:
        if self.phase is not Phase.CLOSING:  # else going away, whose deadline to cut the connection stays
            self.phase = Phase.CLOSING
            self._deadline.cancel()
        transport = self.transport
        if not transport.is_closing():  # a transport handed over to an upgrade is closing for this protocol
            proxy = self._proxy
            close_now(transport, None if proxy is None else proxy.sock)

    def _arm_head_deadline(self) -> None:
        self.phase = Phase.AWAITING_HEAD
        self._deadline.arm(self.config.header_timeout)

    def _deadline_passed(self) -> None:
        phase = self.phase
        if phase is Phase.AWAITING_HEAD:
            if self.transport.is_closing():
                return
            if self.engine.trailing_data:
                self._reject(408)
            else:
                self._close()
        elif phase is Phase.IDLE or phase is Phase.DISCARDING:
            self._close()  # idle for the whole keep-alive timeout (or the drain's grace)
        elif phase is Phase.IN_FLIGHT or phase is Phase.WRITE_BLOCKED:
            if self.flow.write_paused:  # the send deadline: nothing taken by the client for send_timeout
                self.context.logger.debug(
                    "HTTP/1.1 client %s read nothing for send_timeout", self._conn_info.client
                )
                self._abort_transport()
        elif phase is Phase.CLOSING:
            # Going away, and the client has not taken what was queued for it: cut the connection.
            self._abort_transport()

    def _abort_transport(self) -> None:
        abort = getattr(self.transport, "abort", None)
        if abort is not None:
            abort()


class _DetachedTransport:
    """What an upgraded-away protocol holds instead of the transport it gave up: every call is a no-op."""

    def write(self, data: bytes) -> None:
        pass

    def close(self) -> None:
        pass

    def is_closing(self) -> bool:
        return True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default
