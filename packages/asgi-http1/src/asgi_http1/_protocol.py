"""HTTP/1.1 connections: engine events in, asgi-core request cycles out.

Connection lifecycle, in h11's terms: IDLE (waiting for a request head, under the head deadline or, between
requests, the keep-alive timeout) -> a request in flight (one `RequestCycle`; further pipelined requests wait
in the engine's buffer with reading paused) -> DONE, then either the next cycle or a close. Anything the engine
rejects gets its 4xx and a close; the app never sees it. The engine (`_engine.py`) is h11 or, when installed,
the faster httptools one; this module is the same for both.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

from asgi_core import (
    ConnectionInfo,
    Deadline,
    FlowControl,
    ProxyHeader,
    RequestCycle,
    ServerContext,
    Transport,
    UpgradeRequest,
    apply_forwarded,
    build_http_scope,
)

from ._engine import Engine, EngineFactory, PeerError, Request, Signal, select_engine
from ._limits import check_head, error_response
from ._writer import HTTP1ResponseWriter

_HTTP_VERSIONS: Final = {b"1.1": "1.1", b"1.0": "1.0"}
_METHODS: Final = {
    method.encode("ascii"): method for method in ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")
}
# Python 3.11 finds an Enum member through `EnumType.__getattr__` (some 75 ns, against 10 for a global):
# the hot paths name members through module-level names instead.
END_OF_MESSAGE: Final = Signal.END_OF_MESSAGE
NEED_DATA: Final = Signal.NEED_DATA
PAUSED: Final = Signal.PAUSED

_BASE_EXTENSIONS: Final[dict[str, Any]] = {"http.response.pathsend": {}}
_HTTP11_EXTENSIONS: Final[dict[str, Any]] = {"http.response.pathsend": {}, "http.response.early_hint": {}}
_TRAILER_EXTENSIONS: Final[dict[str, Any]] = {**_HTTP11_EXTENSIONS, "http.response.trailers": {}}


class HTTP1Protocol(asyncio.Protocol):
    """An `asyncio.Protocol` serving ASGI over HTTP/1.1. Create one per connection: `HTTP1Protocol(context)`.

    `parser` picks the engine: "h11" (the reference), "httptools" or "auto" (httptools when installed); by
    default the `ASGI_HTTP1_PARSER` environment variable, else "auto".
    """

    transport: Transport
    flow: FlowControl
    engine: Engine

    def __init__(
        self, context: ServerContext, parser: str | None = None, *, proxy: ProxyHeader | None = None
    ) -> None:
        self.context = context
        self._proxy = proxy
        self.config = context.config
        self._engine_factory: EngineFactory = select_engine(parser)
        self.cycle: RequestCycle | None = None
        self.writer: HTTP1ResponseWriter | None = None
        self.closing_after_response = False
        self._conn_info: ConnectionInfo
        self._head_deadline_armed = False
        self._discarding_body = False
        self._parked_bytes = -1  # -1: not parked; else bytes received while a request is in flight
        self.loop = context.loop or asyncio.get_running_loop()
        # One deadline at a time: the request head's while one is awaited, else the keep-alive wait's.
        self._deadline = Deadline(self.loop, self._deadline_passed)

    # ---- asyncio.Protocol ----------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.flow = FlowControl(self.transport)
        self._conn_info = ConnectionInfo.from_transport(self.transport, self._proxy)
        self._sendfile = self._conn_info.tls is None and isinstance(self.loop, asyncio.BaseEventLoop)
        self.engine = self._engine_factory(self.config)
        set_limits = getattr(transport, "set_write_buffer_limits", None)
        if set_limits is not None:
            set_limits(high=self.config.write_buffer_high_water)
        self.context.connections.add(self)
        if self.context.draining:
            self.closing_after_response = True
        self._arm_head_deadline()

    def data_received(self, data: bytes) -> None:
        engine = self.engine
        if engine.input_finished:
            return  # RFC 9112 section 9.6: nothing after a request that closes the connection is processed
        if self.cycle is None:
            engine.receive_data(data)
            self._handle_events()
            if self._between_requests() and not self._head_deadline_armed and not self.transport.is_closing():
                # Part of a head, and it started in these bytes: the keep-alive wait is over, the head's begins.
                # (Armed after parsing, not before, so that a head that came whole never arms it.)
                self._arm_head_deadline()
            return
        if self._parked_bytes >= 0:
            # Pipelined bytes wait in the engine while a response is produced; past a head's worth, stop reading.
            self._parked_bytes += len(data)
            if self._parked_bytes > self.config.max_head_size:
                self.flow.pause_reading("pipelined")
        engine.receive_data(data)
        self._handle_events()

    def _between_requests(self) -> bool:
        # A method rather than `self.cycle is None` inline: after a call that may start a cycle, mypy still
        # narrows the attribute to None, and compiled (mypyc) code would trust that narrowing.
        return self.cycle is None

    def eof_received(self) -> bool:
        # A client may half-close once its request is sent; it still gets its response, then we close.
        self.engine.receive_data(b"")
        if self.cycle is not None:
            self.cycle.peer_closed()
        self._handle_events()
        if self.cycle is None and not self.transport.is_closing():
            self.transport.close()
        # Keep the transport half-open only for a response still to come, and never over TLS: asyncio cannot
        # keep a TLS transport half-open, closes it all the same and logs a warning for every such connection.
        return self.cycle is not None and self._conn_info.tls is None

    def connection_lost(self, exc: Exception | None) -> None:
        self._head_deadline_armed = False
        self._deadline.close()
        self.context.connections.discard(self)
        self.flow.connection_lost()
        if self.cycle is not None:
            self.cycle.connection_lost()
            self.cycle = None

    def pause_writing(self) -> None:
        self.flow.pause_writing()

    def resume_writing(self) -> None:
        self.flow.resume_writing()

    # ---- ServerConnection ----------------------------------------------------------------------------

    def shutdown(self) -> None:
        self.closing_after_response = True
        # Only a connection idle between requests closes now. One still expecting a request head (just
        # accepted, or part of the next head received) would lose a request its client already sent: it gets
        # the head deadline to arrive and is answered with `Connection: close`.
        if self.cycle is None and not self._head_deadline_armed:
            self.transport.close()

    def going_away(self) -> None:
        """The drain is over: closing makes a request still in flight see `http.disconnect`."""
        self.transport.close()

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
            elif event is END_OF_MESSAGE:
                self._on_end_of_body()
                if engine.input_finished:
                    return  # as above: that was the last request
            elif event is NEED_DATA:
                return
            elif event is PAUSED:
                # The request is fully read; anything more is pipelined and waits for this response. Reading
                # goes on (that is how a vanished client is noticed) until the parked bytes grow too many.
                self._parked_bytes = max(self._parked_bytes, 0)
                return
            else:  # ConnectionClosed: the client closed its side
                if self.cycle is None:
                    self.transport.close()
                return  # a request received whole still gets its response (half-close); then we close

    def _on_request(self, request: Request) -> None:
        self._head_deadline_armed = False
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
        scope = build_http_scope(
            conn=conn,
            method=method,
            http_version=http_version,
            target=request.target,
            headers=headers,
            root_path=self.config.root_path,
            state=self.context.state,
            extensions=extensions.copy(),
        )
        writer = HTTP1ResponseWriter(self, trailers=trailers, informational=is_11, sendfile=self._sendfile)
        cycle = RequestCycle(
            scope, writer, self.context, content_length=request.content_length, body_expected=request.body_expected
        )
        self.writer = writer
        self.cycle = cycle
        cycle.task = self.loop.create_task(cycle.run())

    def _on_body(self, data: bytes) -> None:
        cycle = self.cycle
        if cycle is None or self._discarding_body:
            return
        cycle.feed_body(data)
        if cycle.buffered_body > self.config.request_body_buffer:
            self.flow.pause_reading("body")

    def _on_end_of_body(self) -> None:
        if self._discarding_body:
            self._discarding_body = False
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
        )
        if not handler.accepts(upgrade):
            return False
        # Explicit hand-off: the new protocol owns the transport from here, leftover bytes included.
        self._head_deadline_armed = False
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
            self.transport.close()
            return
        self.cycle = None
        self.writer = None
        if engine.request_complete:
            self._next_request()
        elif engine.receiving_body:
            # The app answered without reading the whole body: read and drop the rest to keep the connection,
            # but only as long as an idle connection is kept (a client may never send the body it announced).
            self._discarding_body = True
            self._arm_keep_alive()
            self.flow.resume_reading("body")
        else:
            self.transport.close()

    def abort(self) -> None:
        self.transport.close()

    # ---- internals -----------------------------------------------------------------------------------

    def _next_request(self) -> None:
        self.engine.start_next_cycle()
        pipelined = self._parked_bytes >= 0
        self._parked_bytes = -1
        self._arm_keep_alive()
        if self.flow.reading_paused:
            self.flow.resume_reading("body")
            self.flow.resume_reading("pipelined")
        if pipelined:
            self._handle_events()  # the next request is buffered already

    def _reject(self, status: int) -> None:
        """Answer a broken or over-limit request and close; a response already under way is cut instead."""
        cycle = self.cycle
        if (cycle is not None and cycle.response_started) or self._discarding_body:
            self.transport.close()  # a response is (or was just) on the wire: an error reply would corrupt it
            return
        self.transport.write(error_response(status))
        self.transport.close()
        if cycle is not None:
            cycle.connection_lost()
            self.cycle = None

    def _arm_head_deadline(self) -> None:
        self._head_deadline_armed = True
        self._deadline.arm(self.config.header_timeout)

    def _arm_keep_alive(self) -> None:
        self._head_deadline_armed = False
        self._deadline.arm(self.config.keep_alive_timeout)

    def _cancel_timer(self) -> None:
        self._head_deadline_armed = False
        self._deadline.cancel()

    def _deadline_passed(self) -> None:
        if self._head_deadline_armed:
            self._head_deadline_passed()
        elif self.cycle is None:
            self.transport.close()  # idle for the whole keep-alive timeout

    def _head_deadline_passed(self) -> None:
        if self.cycle is not None or self.transport.is_closing():
            return
        if self.engine.trailing_data and not self._discarding_body:
            self._reject(408)
        else:
            self.transport.close()


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
