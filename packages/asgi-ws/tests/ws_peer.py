"""A wsproto client talking to `WebSocketProtocol` through in-memory transports: no sockets, no HTTP server.

Over HTTP/1.1 the client's handshake request is made by wsproto and parsed by h11 into the `UpgradeRequest`
that asgi-http1 would hand over, and the server's answer goes back through wsproto's client handshake. With
`tunnelled=True` the peer plays HTTP/2 extended CONNECT (RFC 8441) instead: the request is what asgi-h2 hands
over, and the transport is a stand-in `StreamTransport` that records `send_head`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import h11
from asgi_core import ASGIApp, Config, ConnectionInfo, Headers, Message, ServerContext, UpgradeRequest
from asgi_wsproto import UPGRADE, WebSocketProtocol
from wsproto.connection import Connection, ConnectionType
from wsproto.events import AcceptConnection, Event, RejectConnection, RejectData, Request
from wsproto.extensions import Extension, PerMessageDeflate
from wsproto.handshake import H11Handshake

RUN_TIMEOUT = 10.0
CLIENT = ("127.0.0.1", 50000)
SERVER = ("127.0.0.1", 8000)


def run(coro: Coroutine[Any, Any, None], timeout: float = RUN_TIMEOUT) -> None:
    async def bounded() -> None:
        await asyncio.wait_for(coro, timeout)

    asyncio.run(bounded())


async def until(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.002)


class MemoryTransport(asyncio.Transport):
    """Records what the server writes; `close` reports `connection_lost` from the loop, as asyncio does."""

    def __init__(self) -> None:
        super().__init__()
        self.protocol: asyncio.Protocol | None = None
        self.data = bytearray()
        self.closed = False
        self.aborted = False
        self.eof_written = False
        self.reading = True
        self.high_water: int | None = None
        self.writes_after_close = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self.closed or self.eof_written:
            self.writes_after_close += 1
            return
        self.data += data

    def take(self) -> bytes:
        data = bytes(self.data)
        self.data.clear()
        return data

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.protocol is not None:
            asyncio.get_running_loop().call_soon(self.protocol.connection_lost, None)

    def abort(self) -> None:
        self.aborted = True
        self.close()

    def is_closing(self) -> bool:
        return self.closed

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.eof_written = True

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def is_reading(self) -> bool:
        return self.reading

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": CLIENT, "sockname": SERVER}.get(name, default)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self.high_water = high


class MemoryStream(MemoryTransport):
    """One HTTP/2 stream as asgi-h2 hands it over: an `asgi_core.StreamTransport`."""

    def __init__(self) -> None:
        super().__init__()
        self.head: tuple[int, Headers] | None = None
        self.head_ended_stream = False

    def send_head(self, status: int, headers: list[tuple[bytes, bytes]], *, end_stream: bool = False) -> None:
        assert self.head is None, "send_head called twice"
        self.head = (status, headers)
        self.head_ended_stream = end_stream

    def write(self, data: bytes | bytearray | memoryview) -> None:
        assert self.head is not None, "DATA written before send_head"
        super().write(data)

    set_write_buffer_limits = None  # type: ignore[assignment]  # a StreamTransport has no socket buffer


def parse_upgrade(data: bytes, *, config: Config | None = None) -> UpgradeRequest:
    """Raw request bytes -> the UpgradeRequest asgi-http1 builds from them (h11 parsing, leftover bytes)."""
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(data)
    event = conn.next_event()
    assert isinstance(event, h11.Request), event
    return UpgradeRequest(
        method=event.method.decode("ascii"),
        target=event.target,
        http_version=event.http_version.decode("ascii"),
        headers=list(event.headers),
        conn=ConnectionInfo(client=CLIENT, server=SERVER, scheme="http"),
        leftover=conn.trailing_data[0],
    )


def h2_request(
    target: bytes = b"/", headers: Sequence[tuple[bytes, bytes]] = ((b"sec-websocket-version", b"13"),)
) -> UpgradeRequest:
    return UpgradeRequest(
        method="CONNECT",
        target=target,
        http_version="2",
        headers=[(b"host", b"example.com"), *headers],
        conn=ConnectionInfo(client=CLIENT, server=SERVER, scheme="https"),
        leftover=b"",
    )


class Peer:
    """A WebSocket client on one server-side `WebSocketProtocol`."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        config: Config | None = None,
        context: ServerContext | None = None,
        target: str = "/",
        subprotocols: Sequence[str] = (),
        deflate: bool = False,
        extra_headers: Headers | None = None,
        request: UpgradeRequest | None = None,
        leftover: bytes = b"",
    ) -> None:
        self.context = context or ServerContext(app=app, config=config or Config())
        self.handshake = H11Handshake(ConnectionType.CLIENT)
        self.deflate = deflate
        if request is None:
            raw = self.handshake.send(
                Request(
                    host="example.com",
                    target=target,
                    subprotocols=list(subprotocols),
                    extensions=[PerMessageDeflate()] if deflate else [],
                    extra_headers=extra_headers or [],
                )
            )
            request = parse_upgrade(raw + leftover)
        self.request = request
        self.tunnelled = request.http_version == "2"
        self.transport: MemoryTransport = MemoryStream() if self.tunnelled else MemoryTransport()
        protocol = UPGRADE.create_protocol(self.context, request)
        assert isinstance(protocol, WebSocketProtocol)
        self.protocol = protocol
        self.transport.protocol = protocol
        self.ws: Connection | None = None
        self.rejection: RejectConnection | None = None
        self.rejection_body = b""
        self._pending: deque[Event] = deque()

    def start(self) -> None:
        self.protocol.connection_made(self.transport)
        if self.request.leftover:
            self.protocol.data_received(self.request.leftover)

    async def open(self) -> AcceptConnection | None:
        """Run the handshake; the accept event (None over HTTP/2), or None with `rejection` set."""
        self.start()
        return await self.answer()

    async def answer(self) -> AcceptConnection | None:
        """Wait for the server's answer to a handshake already started."""
        if self.tunnelled:
            await self._open_tunnel()
            return None
        while True:
            data = self.transport.take()
            if data:
                self.handshake.receive_data(data)
                for event in self.handshake.events():
                    if isinstance(event, AcceptConnection):
                        self.ws = self.handshake.connection
                        return event
                    if isinstance(event, RejectConnection):
                        self.rejection = event
                        if not event.has_body:
                            return None
                    elif isinstance(event, RejectData):
                        self.rejection_body += event.data
                        if event.body_finished:
                            return None
            elif self.transport.closed:
                if self.rejection is not None:
                    return None
                raise AssertionError(f"closed during the handshake; sent {bytes(self.transport.data)!r}")
            await asyncio.sleep(0.002)

    async def _open_tunnel(self) -> None:
        stream = self.transport
        assert isinstance(stream, MemoryStream)
        await until(lambda: stream.head is not None or stream.closed)
        assert stream.head is not None
        status, headers = stream.head
        if status == 200:
            extensions: list[Extension] = []
            offered = dict(headers).get(b"sec-websocket-extensions")
            if offered is not None:
                extension = PerMessageDeflate()
                extension.finalize(offered.decode("ascii"))
                extensions.append(extension)
            self.ws = Connection(ConnectionType.CLIENT, extensions)
        else:
            await until(lambda: stream.closed)
            self.rejection_body = stream.take()

    # ---- frames --------------------------------------------------------------------------------------

    def send(self, event: Event, *, chunk: int | None = None) -> None:
        assert self.ws is not None
        self.send_raw(self.ws.send(event), chunk=chunk)

    def send_raw(self, data: bytes, *, chunk: int | None = None) -> None:
        if chunk is None:
            self.protocol.data_received(data)
            return
        for start in range(0, len(data), chunk):
            self.protocol.data_received(data[start : start + chunk])

    async def next_event(self, timeout: float = 3.0) -> Event:
        assert self.ws is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self._pending.extend(self.ws.events())  # frames that came with the handshake answer
        while not self._pending:
            data = self.transport.take()
            if data:
                self.ws.receive_data(data)
                self._pending.extend(self.ws.events())
                continue
            if loop.time() > deadline:
                raise AssertionError("no event from the server in time")
            await asyncio.sleep(0.002)
        return self._pending.popleft()

    async def closed(self, timeout: float = 3.0) -> None:
        await until(lambda: self.transport.closed, timeout)


class Recorder:
    """An app that accepts, records what it receives, and answers as a test script says."""

    def __init__(
        self, script: Callable[[Message, Callable[[Message], Coroutine[Any, Any, None]]], Any] | None = None
    ):
        self.received: list[Message] = []
        self.scope: dict[str, Any] = {}
        self.errors: list[BaseException] = []
        self.done = asyncio.Event()
        self._script = script

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.scope = dict(scope)
        try:
            message = await receive()
            self.received.append(message)
            await send({"type": "websocket.accept"})
            while True:
                message = await receive()
                self.received.append(message)
                if message["type"] == "websocket.disconnect":
                    return
                if self._script is not None:
                    await self._script(message, send)
        except BaseException as exc:
            self.errors.append(exc)
            raise
        finally:
            self.done.set()


async def echo(message: Message, send: Callable[[Message], Coroutine[Any, Any, None]]) -> None:
    await send({"type": "websocket.send", "text": message.get("text"), "bytes": message.get("bytes")})
