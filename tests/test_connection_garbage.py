"""A closed connection leaves nothing for the garbage collector: its objects are freed by reference counting the
moment the event loop lets go of them.

A connection whose protocol sits in a reference cycle (a timer's callback bound to the protocol that holds the
timer, a writer that points back at its protocol) is only freed by Python's cyclic collector, and with clients
that open a connection per request those collections cost several percent of the server's CPU. Each case runs
real exchanges over loopback with the real protocol plugins, under asyncio and uvloop, and then asks the
collector what it found: nothing from our packages may be among it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import h2.config
import h2.connection
import h2.events
import pytest
import uvloop
from asgi_core import Config, Receive, Scope, Send, Server

OURS = ("asgi_core", "asgi_http1", "asgi_h2", "asgi_wsproto", "asgi_uwsgi")
#: asyncio's selector transport is a cycle of its own (it keeps a bound method of itself as its read callback),
#: and it holds the accepted socket: that cycle is the event loop's, not ours.
THE_LOOPS = frozenset({"asgi_core._accepted_socket.AcceptedSocket"})

Client = Callable[[int], Awaitable[None]]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        return
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            await send({"type": "websocket.send", "text": message.get("text") or ""})
    path = scope["path"]
    if path == "/fail":
        raise RuntimeError("the app fails, as apps do")
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if path == "/hang":
        await receive()  # until the client goes away: http.disconnect
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    if path == "/stream":
        for part in (b"one ", b"two ", b"three"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body"})
        return
    await send({"type": "http.response.body", "body": b"got %d bytes" % len(body)})


@contextlib.contextmanager
def saving_garbage() -> Iterator[list[object]]:
    """What the cyclic collector finds from here on, kept rather than freed, so that it can be looked at."""
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        yield gc.garbage
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.collect()


def is_ours(kind: type) -> bool:
    module = kind.__dict__.get("__module__")  # a type's own: a metaclass's instances have it as a descriptor
    return isinstance(module, str) and module.startswith(OURS)


def ours(garbage: list[object]) -> list[str]:
    found = {type(item).__module__ + "." + type(item).__qualname__ for item in garbage}
    return sorted(name for name in found if name.startswith(OURS) and name not in THE_LOOPS)


async def serve_and_collect(config: Config, client: Client) -> list[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    port = sock.getsockname()[1]
    server = Server(app, config)
    await server.start([sock])
    try:
        # The server's own objects, held here so that only what the connections made can turn up as garbage.
        server_objects = [item for item in gc.get_objects() if is_ours(type(item))]
        with saving_garbage() as garbage:
            await asyncio.wait_for(client(port), 10)
            for _ in range(200):  # the server's side closes once the client's close reaches it
                if not server.open_connections:
                    break
                await asyncio.sleep(0.01)
            assert not server.open_connections
            for _ in range(3):
                await asyncio.sleep(0)  # the loop's close callbacks, which drop the protocol, run
            gc.collect()
            del server_objects
            return ours(garbage)
    finally:
        await server.shutdown(5)
        sock.close()


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Callable[[Awaitable[Any]], Any]:
    def runner(main: Awaitable[Any]) -> Any:
        if request.param == "uvloop":
            return uvloop.run(main)  # type: ignore[arg-type]
        return asyncio.run(main)  # type: ignore[arg-type]

    return runner


@contextlib.asynccontextmanager
async def connected(port: int) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def until_closed(reader: asyncio.StreamReader) -> bytes:
    return await reader.read()


# ---- HTTP/1.1 --------------------------------------------------------------------------------------------


async def http1_exchanges(port: int) -> None:
    async with connected(port) as (reader, writer):
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert (await until_closed(reader)).startswith(b"HTTP/1.1 200")
    async with connected(port) as (reader, writer):
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 2)
        writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
        writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
        writer.write(b"GET /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = await until_closed(reader)
        assert answer.count(b"HTTP/1.1 200") == 5
        assert b"got 3 bytes" in answer
    async with connected(port) as (reader, writer):
        writer.write(b"GET /fail HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 500")
    async with connected(port) as (reader, writer):
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n")
        assert (await until_closed(reader)).startswith(b"HTTP/1.1 400")
    async with connected(port) as (reader, writer):
        writer.write(b"GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
        await asyncio.sleep(0.05)  # the app waits for the client; the client leaves
    async with connected(port) as (reader, writer):
        writer.write(b"GET / HTTP/1.1\r\n")  # a head never finished
        await asyncio.sleep(0.05)


def test_http1_connections_leave_no_cycles(run: Callable[[Awaitable[Any]], Any]) -> None:
    assert run(serve_and_collect(Config(), http1_exchanges)) == []


# ---- WebSocket ---------------------------------------------------------------------------------------------


async def websocket_exchange(port: int) -> None:
    async with connected(port) as (reader, writer):
        writer.write(
            b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
        mask = b"\x01\x02\x03\x04"
        text = bytes(byte ^ mask[index % 4] for index, byte in enumerate(b"hi"))
        writer.write(b"\x81\x82" + mask + text)  # a masked text frame, "hi"
        assert await reader.readexactly(4) == b"\x81\x02hi"
        writer.write(b"\x88\x82" + mask + bytes(byte ^ mask[index] for index, byte in enumerate(b"\x03\xe8")))
        assert (await until_closed(reader)).startswith(b"\x88")


def test_websocket_connections_leave_no_cycles(run: Callable[[Awaitable[Any]], Any]) -> None:
    assert run(serve_and_collect(Config(), websocket_exchange)) == []


# ---- HTTP/2 in cleartext (prior knowledge) --------------------------------------------------------------------


async def h2_streams(port: int) -> list[str]:
    """Three streams on one connection; what the collector finds of ours while the connection is still open.

    Per stream, not per connection: h2's `H2Connection` is a reference cycle of its own (its table of frame
    handlers holds bound methods of itself), so each HTTP/2 connection, long-lived by design, ends in a
    collection whatever we do; a stream must not."""
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    async with connected(port) as (reader, writer):
        for stream_id, path in ((1, "/"), (3, "/stream"), (5, "/fail")):
            conn.send_headers(
                stream_id,
                [(":method", "GET"), (":scheme", "http"), (":authority", "x"), (":path", path)],
                end_stream=True,
            )
        writer.write(conn.data_to_send())
        ended: set[int] = set()
        while len(ended) < 3:
            data = await reader.read(65536)
            assert data, "the server closed before answering every stream"
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.StreamEnded | h2.events.StreamReset):
                    ended.add(event.stream_id)
                if isinstance(event, h2.events.DataReceived):
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            writer.write(conn.data_to_send())
        for _ in range(3):
            await asyncio.sleep(0)  # the streams' app tasks finish
        gc.collect()
        found = ours(gc.garbage)
        conn.close_connection()
        writer.write(conn.data_to_send())
        await until_closed(reader)
    return found


def test_h2_streams_leave_no_cycles(run: Callable[[Awaitable[Any]], Any]) -> None:
    config = Config(http2_cleartext="prior-knowledge", http_protocols=("h2", "h1"))
    found: list[list[str]] = []

    async def client(port: int) -> None:
        found.append(await h2_streams(port))

    run(serve_and_collect(config, client))
    assert found == [[]]


# ---- uWSGI -------------------------------------------------------------------------------------------------


def uwsgi_packet(variables: dict[str, str]) -> bytes:
    payload = b"".join(
        struct.pack("<H", len(key)) + key.encode() + struct.pack("<H", len(value)) + value.encode()
        for key, value in variables.items()
    )
    return struct.pack("<BHB", 0, len(payload), 0) + payload


async def uwsgi_exchange(port: int) -> None:
    for path in ("/", "/stream", "/fail"):
        async with connected(port) as (reader, writer):
            variables = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "SERVER_PROTOCOL": "HTTP/1.1"}
            writer.write(uwsgi_packet(variables | {"HTTP_HOST": "x", "SERVER_NAME": "x", "SERVER_PORT": "80"}))
            answer = await until_closed(reader)
            assert answer.startswith(b"HTTP/1.1 500" if path == "/fail" else b"HTTP/1.1 200")


def test_uwsgi_connections_leave_no_cycles(run: Callable[[Awaitable[Any]], Any]) -> None:
    assert run(serve_and_collect(Config(protocol="uwsgi"), uwsgi_exchange)) == []
