"""WebSocket end to end over real loopback sockets: the `websockets` client against asgi-http1 + asgi-wsproto,
served by `asgi_core.serve` (which finds the upgrade handler by entry point) or by a plain asyncio server whose
registry has `asgi_wsproto.UPGRADE` added by hand. Includes a Starlette WebSocket endpoint, the two-step drain,
and misbehaving peers written as raw sockets (floods, oversized frames). Every test runs on both HTTP/1.1
engines, which hand the connection over."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asgi_core
import pytest
import websockets
from asgi_core import ASGIApp, Config, Receive, Registry, Scope, Send, ServerContext, serve
from asgi_http1 import HTTP1Protocol
from asgi_wsproto import UPGRADE, WebSocketProtocol
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

TIMEOUT = 10.0


@pytest.fixture(scope="module", params=["h11", "httptools"], autouse=True)
def http1_engine(request: pytest.FixtureRequest) -> Iterator[str]:
    """Each test once per HTTP/1.1 engine, chosen as a user would force it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ASGI_HTTP1_PARSER", request.param)
        yield request.param


def run(coro: Coroutine[Any, Any, None]) -> None:
    async def bounded() -> None:
        await asyncio.wait_for(coro, TIMEOUT)

    asyncio.run(bounded())


@asynccontextmanager
async def serving(app: ASGIApp, config: Config | None = None) -> AsyncIterator[int]:
    """`asgi_core.serve` on 127.0.0.1, a free port; yields the port, stops (and waits for) the server after."""
    stop = asyncio.Event()
    ready: asyncio.Future[asgi_core.Server] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        serve(app, HTTP1Protocol, port=0, config=config, stop=stop, ready=ready.set_result, graceful_timeout=3)
    )
    waiters: list[asyncio.Future[Any]] = [ready, task]
    done, _ = await asyncio.wait(waiters, timeout=5, return_when=asyncio.FIRST_COMPLETED)
    assert ready in done, "server did not start"
    try:
        yield ready.result().sockets[0].getsockname()[1]
    finally:
        stop.set()
        await asyncio.wait_for(task, 8)


@asynccontextmanager
async def serving_context(app: ASGIApp, config: Config | None = None) -> AsyncIterator[tuple[int, ServerContext]]:
    """A plain asyncio server whose `ServerContext` the test drives (the drain) and inspects (connections)."""
    registry = Registry(discover=False)
    registry.add_upgrade(UPGRADE)
    context = ServerContext(app=app, config=config or Config(), registry=registry)
    server = await asyncio.get_running_loop().create_server(
        functools.partial(HTTP1Protocol, context), "127.0.0.1", 0
    )
    try:
        yield server.sockets[0].getsockname()[1], context
    finally:
        server.close()
        context.drain_connections()
        context.close_connections()
        await server.wait_closed()


def websockets_of(context: ServerContext) -> list[WebSocketProtocol]:
    return [connection for connection in context.connections if isinstance(connection, WebSocketProtocol)]


async def echo_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 426, "headers": [(b"upgrade", b"websocket")]})
        await send({"type": "http.response.body", "body": b"WebSocket only"})
        return
    if scope["type"] != "websocket":
        return
    await receive()
    subprotocol = scope["subprotocols"][0] if scope["subprotocols"] else None
    await send({"type": "websocket.accept", "subprotocol": subprotocol, "headers": [(b"x-echo", b"1")]})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") == "close please":
            await send({"type": "websocket.close", "code": 4000, "reason": "as you wish"})
        elif message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


def test_entry_point_discovery_finds_the_handler() -> None:
    registry = Registry(discover=True)
    assert "websocket" in registry.upgrade_tokens()
    assert registry.upgrade("WebSocket") is UPGRADE  # Upgrade tokens are case-insensitive
    assert not registry.errors


def test_echo_with_websockets_client() -> None:
    async def scenario() -> None:
        async with (
            serving(echo_app) as port,
            connect(f"ws://127.0.0.1:{port}/echo", subprotocols=[Subprotocol("v1")]) as ws,
        ):
            assert ws.subprotocol == "v1"
            assert ws.response is not None
            assert ws.response.headers["x-echo"] == "1"
            assert ws.response.headers["sec-websocket-extensions"] == "permessage-deflate"
            await ws.send("hello")
            assert await ws.recv() == "hello"
            await ws.send(b"\x00\x01\x02")
            assert await ws.recv() == b"\x00\x01\x02"
            big = "x" * 1_000_000
            await ws.send(big)
            assert await ws.recv() == big
            await ws.send(["frag", "mented"])  # a fragmented message
            assert await ws.recv() == "fragmented"
            await ws.send("close please")
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd is not None
            assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4000, "as you wish")

    run(scenario())


def test_plain_asyncio_server_with_a_registry_built_by_hand() -> None:
    async def scenario() -> None:
        for with_websocket in (True, False):
            registry = Registry(discover=False)
            if with_websocket:
                registry.add_upgrade(UPGRADE)
            context = ServerContext(app=echo_app, registry=registry)
            loop = asyncio.get_running_loop()
            server = await loop.create_server(functools.partial(HTTP1Protocol, context), "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            try:
                if with_websocket:
                    async with connect(f"ws://127.0.0.1:{port}/", compression=None) as ws:
                        await ws.send("registered")
                        assert await ws.recv() == "registered"
                else:
                    # No handler for the token: the request is plain HTTP and the app answers it as such.
                    with pytest.raises(websockets.InvalidStatus) as refused:
                        async with connect(f"ws://127.0.0.1:{port}/"):
                            pass
                    assert refused.value.response.status_code == 426
            finally:
                server.close()
                context.drain_connections()
                await server.wait_closed()

    run(scenario())


def test_close_codes_both_ways_and_disconnect_reaches_the_app() -> None:
    seen: list[Any] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            return
        await receive()
        await send({"type": "websocket.accept"})
        seen.append(await receive())

    async def scenario() -> None:
        async with serving(app) as port:
            async with connect(f"ws://127.0.0.1:{port}/") as ws:
                await ws.close(code=4321, reason="client leaves")
                assert ws.close_code == 4321
            for _ in range(100):
                if seen:
                    break
                await asyncio.sleep(0.02)
            assert seen == [{"type": "websocket.disconnect", "code": 4321, "reason": "client leaves"}]

    run(scenario())


@pytest.mark.parametrize("how", ["close", "denial"])
def test_refusals_reach_the_client_as_http_responses(how: str) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            return
        await receive()
        if how == "close":
            await send({"type": "websocket.close"})
        else:
            await send({"type": "websocket.http.response.start", "status": 401, "headers": []})
            await send({"type": "websocket.http.response.body", "body": b"log in first"})

    async def scenario() -> None:
        async with serving(app) as port:
            with pytest.raises(websockets.InvalidStatus) as refused:
                async with connect(f"ws://127.0.0.1:{port}/"):
                    pass
            response = refused.value.response
            if how == "close":
                assert response.status_code == 403
            else:
                assert response.status_code == 401
                assert response.body == b"log in first"

    run(scenario())


def test_invalid_handshake_over_a_socket_gets_400_and_a_close() -> None:
    async def scenario() -> None:
        async with serving(echo_app) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Version: 13\r\n\r\n"
            )
            response = await asyncio.wait_for(reader.read(), 5)  # read() returns at EOF: the server closed
            writer.close()
            assert response.startswith(b"HTTP/1.1 400 ")
            assert b"Sec-WebSocket-Key" in response

    run(scenario())


def test_message_size_limit_and_keepalive_on_the_wire() -> None:
    config = Config(websocket_max_message_size=1000, websocket_ping_interval=0.05, websocket_ping_timeout=0.5)

    async def scenario() -> None:
        async with serving(echo_app, config) as port, connect(f"ws://127.0.0.1:{port}/") as ws:
            await asyncio.sleep(0.3)  # several server pings, each answered by the client: still open
            await ws.send("a" * 1000)
            assert await ws.recv() == "a" * 1000
            await ws.send("b" * 1001)
            with pytest.raises(websockets.ConnectionClosedError) as closed:
                await ws.recv()
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1009

    run(scenario())


def test_drain_keeps_websockets_open_until_going_away_closes_them_with_1001() -> None:
    seen: list[Any] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await echo_app(scope, receive, _recording(seen, send))
        seen.append("app returned")

    async def scenario() -> None:
        async with serving_context(app) as (port, context):
            ws = await connect(f"ws://127.0.0.1:{port}/")
            context.drain_connections()  # step 1: the server stopped accepting
            await ws.send("during the drain")
            assert await ws.recv() == "during the drain"
            context.close_connections()  # step 2: time is up
            with pytest.raises(websockets.ConnectionClosedOK) as closed:
                await ws.recv()
            assert closed.value.rcvd is not None
            assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1001, "server shutting down")
            for _ in range(100):
                if "app returned" in seen:
                    break
                await asyncio.sleep(0.02)
            assert seen[-1] == "app returned"

    run(scenario())


def _recording(seen: list[Any], send: Send) -> Send:
    async def recording_send(message: Any) -> None:
        seen.append(message)
        await send(message)

    return recording_send


# ---- misbehaving peers, as raw sockets ------------------------------------------------------------------


def client_frame(opcode: int, payload: bytes = b"", *, fin: bool = True, length: int | None = None) -> bytes:
    """A client frame masked with a zero key (the payload goes as it is)."""
    size = len(payload) if length is None else length
    first = (0x80 if fin else 0) | opcode
    if size <= 125:
        head = bytes((first, 0x80 | size))
    elif size <= 0xFFFF:
        head = struct.pack("!BBH", first, 0x80 | 126, size)
    else:
        head = struct.pack("!BBQ", first, 0x80 | 127, size)
    return head + b"\x00\x00\x00\x00" + payload


async def raw_websocket(port: int, *, receive_buffer: int | None = None) -> tuple[asyncio.StreamReader, Any]:
    """A WebSocket opened by hand (no compression offered); `receive_buffer` shrinks the client's socket buffer."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if receive_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock)
    writer.write(
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 101 "), head
    return reader, writer


async def read_server_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    first, second = await reader.readexactly(2)
    size = second & 0x7F
    if size == 126:
        (size,) = struct.unpack("!H", await reader.readexactly(2))
    elif size == 127:
        (size,) = struct.unpack("!Q", await reader.readexactly(8))
    return first & 0x0F, await reader.readexactly(size)


async def read_close_code(reader: asyncio.StreamReader) -> int:
    """Skip to the server's close frame; its code."""
    while True:
        opcode, payload = await asyncio.wait_for(read_server_frame(reader), 5)
        if opcode == 8:
            code: int = struct.unpack("!H", payload[:2])[0]
            return code


async def echo_within(port: int, stop: asyncio.Event, limit: float) -> list[float]:
    """Round trips of another client while `stop` is not set, each bounded by `limit` seconds."""
    loop = asyncio.get_running_loop()
    times: list[float] = []
    async with connect(f"ws://127.0.0.1:{port}/", compression=None) as ws:
        while not stop.is_set():
            started = loop.time()
            await ws.send("are you there")
            assert await asyncio.wait_for(ws.recv(), limit) == "are you there"
            times.append(loop.time() - started)
            await asyncio.sleep(0.05)
    return times


def test_the_server_closes_first_even_while_the_app_still_runs() -> None:
    """After the close handshake the server closes the TCP connection first (RFC 6455 7.1.1), at once: not once
    the app, which heard the disconnect, gives the loop back."""
    release = threading.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        assert (await receive())["type"] == "websocket.disconnect"
        release.wait(TIMEOUT)  # holds the server's loop: what has not left by now leaves after the test

    def client(port: int) -> tuple[bytes, bool]:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
                sock.sendall(
                    b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
                )
                received = b""
                while b"\r\n\r\n" not in received:
                    received += sock.recv(4096)
                sock.sendall(client_frame(0x8, struct.pack("!H", 1000)))
                chunk = b"?"
                with contextlib.suppress(TimeoutError):
                    while chunk := sock.recv(4096):
                        received += chunk
                return received.partition(b"\r\n\r\n")[2], chunk == b""
        finally:
            release.set()

    async def scenario() -> None:
        async with serving(app) as port:
            after_handshake, closed = await asyncio.to_thread(client, port)
        assert after_handshake == b"\x88\x02" + struct.pack("!H", 1000)  # the close frame echoed
        assert closed, "the server did not close the connection while its app was still running"

    run(scenario())


def test_frame_announcing_2_gib_gets_close_1009_before_the_connection_goes() -> None:
    async def scenario() -> None:
        async with serving(echo_app) as port:
            reader, writer = await raw_websocket(port)
            writer.write(client_frame(2, length=2**31) + b"\x00" * 65536)  # the header and a first part
            assert await read_close_code(reader) == 1009
            writer.write(client_frame(8, struct.pack("!H", 1009)))
            assert await asyncio.wait_for(reader.read(), 5) == b""  # then the server hangs up
            writer.close()

    run(scenario())


def test_ping_flood_from_a_peer_that_never_reads_stays_bounded_and_others_are_served() -> None:
    """Issue item 9: reading stops above the write high-water mark (pongs included); the peer that takes
    nothing is dropped after the ping timeout; another client is answered within 1 s throughout."""
    config = Config(websocket_ping_timeout=1.0, websocket_per_message_deflate=False)
    high_water = config.write_buffer_high_water

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        async with serving_context(echo_app, config) as (port, context):
            _, writer = await raw_websocket(port, receive_buffer=4096)
            (flooded,) = websockets_of(context)
            stop = asyncio.Event()
            other = asyncio.create_task(echo_within(port, stop, 1.0))
            largest = 0
            pings = client_frame(9, b"p" * 125) * 64
            started = loop.time()
            while loop.time() < started + 5 and flooded in context.connections:
                writer.write(pings)
                try:
                    await asyncio.wait_for(writer.drain(), 0.05)
                except TimeoutError:
                    pass  # the server stopped reading: its buffers and ours are full
                except ConnectionResetError:
                    break  # dropped
                largest = max(largest, flooded.transport.get_write_buffer_size())  # type: ignore[attr-defined]
            # The flooder never reads: dropped once its bytes have waited for the ping timeout (1 s).
            for _ in range(100):
                if flooded not in context.connections:
                    break
                await asyncio.sleep(0.02)
            assert flooded not in context.connections
            assert loop.time() - started > 1.0
            stop.set()
            assert len(await other) >= 3
            assert largest <= 2 * high_water, largest
            writer.transport.abort()

    run(scenario())


def test_empty_continuation_flood_is_closed_with_1009_and_others_are_served() -> None:
    """Issue item 10: a message that never grows is still bounded (frames per message), and the flooding
    connection gets the loop a slice at a time meanwhile."""

    async def scenario() -> None:
        async with serving(echo_app, Config(websocket_per_message_deflate=False)) as port:
            reader, writer = await raw_websocket(port)
            stop = asyncio.Event()
            other = asyncio.create_task(echo_within(port, stop, 1.0))
            await asyncio.sleep(0.1)
            writer.write(client_frame(1, b"never ends", fin=False))
            burst = client_frame(0, fin=False) * 4096

            async def flood() -> None:
                while True:
                    writer.write(burst)
                    await writer.drain()

            flooding = asyncio.create_task(flood())
            try:
                assert await asyncio.wait_for(read_close_code(reader), 8) == 1009
            finally:
                flooding.cancel()
                stop.set()
            assert len(await other) >= 1
            writer.transport.abort()

    run(scenario())


def starlette_app() -> Starlette:
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            while True:
                text = await websocket.receive_text()
                await websocket.send_text(f"starlette says {text}")
        except WebSocketDisconnect:
            pass

    return Starlette(routes=[WebSocketRoute("/ws", echo)])


def test_starlette_websocket_echo() -> None:
    async def scenario() -> None:
        async with serving(starlette_app()) as port:
            async with connect(f"ws://127.0.0.1:{port}/ws") as ws:
                for word in ("one", "two", "ünï"):
                    await ws.send(word)
                    assert await ws.recv() == f"starlette says {word}"
            # Starlette answers a WebSocket to an unknown route by closing before accept: a 403.
            with pytest.raises(websockets.InvalidStatus) as refused:
                async with connect(f"ws://127.0.0.1:{port}/nowhere"):
                    pass
            assert refused.value.response.status_code == 403

    run(scenario())


# ---- the package's documented examples -----------------------------------------------------------------

PACKAGE = Path(__file__).resolve().parents[1] / "packages" / "asgi-ws"


def readme_app() -> ASGIApp:
    """The app of the README's standalone example, run as the README shows it minus `asyncio.run`."""
    readme = (PACKAGE / "README.md").read_text()
    block = readme.split("```python\n", 1)[1].split("```", 1)[0]
    definitions, run_line = block.split("\nasyncio.run(", 1)
    assert run_line.startswith("serve(app, HTTP1Protocol")
    namespace: dict[str, Any] = {}
    exec(compile(definitions, "README.md", "exec"), namespace)
    app: ASGIApp = namespace["app"]
    return app


def test_readme_standalone_example() -> None:
    async def scenario() -> None:
        async with serving(readme_app()) as port, connect(f"ws://127.0.0.1:{port}/") as ws:
            await ws.send("from the readme")
            assert await ws.recv() == "from the readme"
            await ws.send(b"\x01")
            assert await ws.recv() == b"\x01"

    run(scenario())


def test_example_echo_server_runs_standalone() -> None:
    process = subprocess.Popen(
        [sys.executable, str(PACKAGE / "examples" / "echo_server.py"), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().split()[-1]
        assert url.startswith("ws://127.0.0.1:")

        async def scenario() -> None:
            async with connect(url) as ws:
                await ws.send("standalone")
                assert await ws.recv() == "standalone"

        run(scenario())
    finally:
        process.send_signal(signal.SIGTERM)  # serve() stops gracefully on SIGTERM
        assert process.wait(10) == 0
