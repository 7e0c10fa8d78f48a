"""A complete asgi-core protocol plugin, small enough to read in one sitting: a line-based toy protocol.

It is not for production. It shows every piece a real protocol package (asgi-http1, asgi-h2, asgi-uwsgi) uses,
and the documentation's "Write a protocol plugin" page quotes it section by section. The test suite runs it
(tests/test_docs_examples.py), both on its own port and reached from HTTP/1.1 by `Upgrade: x-lines`.

The wire format, one request per connection:

    client:  <METHOD> <target> <body length>\\n   then exactly that many body bytes
    server:  <status>\\n  <name>: <value>\\n ...  \\n   then chunks <hex length>\\n<bytes>, ending with 0\\n

A response that ends without the final `0\\n` was aborted. Run it with `python examples/line_protocol.py`
(`PORT=0` for a free port) and talk to it with `printf 'GET /hello 0\\n' | nc 127.0.0.1 8000`.
"""

from __future__ import annotations

import asyncio
import os
from typing import BinaryIO

from asgi_core import (
    ConnectionInfo,
    FlowControl,
    Headers,
    Receive,
    RequestCycle,
    Scope,
    Send,
    ServerContext,
    Transport,
    UpgradeRequest,
    build_http_scope,
    serve,
)

MAX_REQUEST_LINE = 8192


# --8<-- [start:writer]
class LineWriter:
    """The wire side of one response. asgi-core's RequestCycle calls these methods; the app never sees them.

    Everything ASGI (message order, the 500 for a failing app, HEAD and 204/304 without body, backpressure,
    the disconnect grace period) is the cycle's job, so a writer only puts bytes on the wire.
    """

    can_send_trailers = False  # this format has nowhere to put trailers: the cycle drops them
    can_send_informational = False  # no 1xx responses (early hints are then skipped)
    can_sendfile = False  # the cycle reads files itself and calls send_data

    def __init__(self, protocol: LineProtocol) -> None:
        self._protocol = protocol

    def request_body(self) -> None:
        """The app waits for body it has not got: HTTP/1.1 sends `100 Continue` here; this format has none."""

    def body_consumed(self, size: int) -> None:
        self._protocol.flow.resume_reading("body")  # the app caught up: read from the client again

    def send_informational(self, status: int, headers: Headers) -> None:
        """Never called while `can_send_informational` is False."""

    def start_response(self, status: int, headers: Headers) -> None:
        lines = [b"%d\n" % status]
        for name, value in headers:
            if b"\n" in name or b"\n" in value or b":" in name:
                # Raising ValueError before writing anything lets the cycle answer 500 instead.
                raise ValueError(f"header {name!r} cannot be sent in this format")
            lines.append(name + b": " + value + b"\n")
        lines.append(b"\n")
        self._protocol.transport.write(b"".join(lines))

    def send_data(self, data: bytes) -> None:
        self._protocol.transport.write(b"%x\n%s" % (len(data), data))

    async def drain(self) -> None:
        await self._protocol.flow.drain()  # returns at once unless the client is slower than the app

    async def send_file(self, file: BinaryIO, offset: int, count: int) -> None:
        raise NotImplementedError("never called while can_sendfile is False")

    def end_response(self, trailers: Headers | None) -> None:
        self._protocol.transport.write(b"0\n")
        self._protocol.transport.close()

    def abort_response(self) -> None:
        self._protocol.transport.close()  # no final 0\n: the client sees the response was cut short


# --8<-- [end:writer]


# --8<-- [start:protocol]
class LineProtocol(asyncio.Protocol):
    """One connection. Parses the request line, builds an ASGI `http` scope, runs one RequestCycle."""

    transport: Transport
    flow: FlowControl

    def __init__(self, context: ServerContext, conn: ConnectionInfo | None = None, greeting: bytes = b"") -> None:
        self.context = context
        self.cycle: RequestCycle | None = None
        self._conn = conn
        self._greeting = greeting
        self._buffer = b""
        self._remaining = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # an asyncio transport satisfies Transport
        self.flow = FlowControl(self.transport)
        if self._conn is None:  # started on a fresh connection rather than handed over by an upgrade
            self._conn = ConnectionInfo.from_transport(self.transport)
        self.context.connections.add(self)  # graceful shutdown reaches every live connection through this
        if self._greeting:
            self.transport.write(self._greeting)

    def data_received(self, data: bytes) -> None:
        if self.cycle is not None:
            self._feed(data)
            return
        self._buffer += data
        line, found, rest = self._buffer.partition(b"\n")
        if not found:
            if len(self._buffer) > MAX_REQUEST_LINE:
                self._refuse()
            return
        self._buffer = b""
        self._start(line, rest)

    def _start(self, line: bytes, rest: bytes) -> None:
        try:
            method, target, length = line.decode("ascii").split(" ")
            size = int(length)
        except ValueError:
            self._refuse()
            return
        if size < 0 or not target.startswith("/") or self._conn is None:
            self._refuse()
            return
        scope = build_http_scope(
            conn=self._conn,
            method=method.upper(),
            http_version="1.1",
            target=target.encode("ascii"),
            headers=[],
            root_path=self.context.config.root_path,
            state=self.context.state,
            extensions={},  # advertise only what this protocol honours: nothing extra
        )
        self.cycle = RequestCycle(
            scope, LineWriter(self), self.context, content_length=size, body_expected=size > 0
        )
        self._remaining = size
        self.cycle.task = asyncio.get_running_loop().create_task(self.cycle.run())
        if rest:
            self._feed(rest)

    def _feed(self, data: bytes) -> None:
        cycle = self.cycle
        data = data[: self._remaining]  # one request per connection: bytes past the body are ignored
        if cycle is None or not data:
            return
        self._remaining -= len(data)
        cycle.feed_body(data)  # the cycle enforces max_request_body_size (413) on what it is fed
        if self._remaining == 0:
            cycle.end_body()
        elif cycle.buffered_body > self.context.config.request_body_buffer:
            self.flow.pause_reading("body")  # the app is slower than the client: stop reading until it catches up

    def _refuse(self) -> None:
        self.transport.write(b"400\n\n0\n")
        self.transport.close()

    def eof_received(self) -> bool:
        if self.cycle is None:
            return False  # nothing asked yet: let asyncio close the connection
        self.cycle.peer_closed()  # the app's next receive() says so, but its response still goes out
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.context.connections.discard(self)
        self.flow.connection_lost()
        if self.cycle is not None:
            self.cycle.connection_lost()  # http.disconnect for the app, then the grace period

    def pause_writing(self) -> None:
        self.flow.pause_writing()

    def resume_writing(self) -> None:
        self.flow.resume_writing()

    def shutdown(self) -> None:
        """Graceful stop (asgi_core.ServerConnection): an idle connection closes now, a busy one when done."""
        if self.cycle is None:
            self.transport.close()


# --8<-- [end:protocol]


# --8<-- [start:plugin]
class LinePlugin:
    """asgi_core.ProtocolPlugin: what the registry loads for `--protocol lines` (or by ALPN id)."""

    name = "lines"
    alpn: tuple[str, ...] = ()  # no TLS ALPN identifier for this protocol

    def create_protocol(self, context: ServerContext) -> asyncio.Protocol:
        return LineProtocol(context)


class LineUpgrade:
    """asgi_core.UpgradeHandler: continues an HTTP/1.1 connection as this protocol after `Upgrade: x-lines`."""

    token = "x-lines"  # noqa: S105 - an HTTP Upgrade token, not a secret

    def accepts(self, request: UpgradeRequest) -> bool:
        return request.method == "GET" and request.http_version == "1.1"

    def create_protocol(self, context: ServerContext, request: UpgradeRequest) -> asyncio.Protocol:
        # The connection info comes from the HTTP/1.1 request, forwarded headers already applied. The new
        # protocol answers the handshake itself; the bytes the client sent after it arrive as data_received.
        switching = b"HTTP/1.1 101 Switching Protocols\r\nupgrade: x-lines\r\nconnection: upgrade\r\n\r\n"
        return LineProtocol(context, conn=request.conn, greeting=switching)


PLUGIN = LinePlugin()
UPGRADE = LineUpgrade()
# --8<-- [end:plugin]


async def echo_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers with the method, the path and the request body."""
    if scope["type"] != "http":
        return
    body = b""
    more_body = True
    while more_body:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        body += message.get("body", b"")
        more_body = message.get("more_body", False)
    reply = f"{scope['method']} {scope['path']} ".encode() + body
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": reply})


if __name__ == "__main__":
    asyncio.run(serve(echo_app, PLUGIN.create_protocol, port=int(os.environ.get("PORT", "8000"))))
