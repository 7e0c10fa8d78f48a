"""WebSocket end to end over real loopback sockets: the `websockets` client against asgi-http1 + asgi-wsproto,
served by `asgi_core.serve` (which finds the upgrade handler by entry point) or by a plain asyncio server whose
registry has `asgi_wsproto.UPGRADE` added by hand. Includes a Starlette WebSocket endpoint."""

from __future__ import annotations

import asyncio
import functools
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asgi_core
import pytest
import websockets
from asgi_core import ASGIApp, Config, Receive, Registry, Scope, Send, ServerContext, serve
from asgi_http1 import HTTP1Protocol
from asgi_wsproto import UPGRADE
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

TIMEOUT = 10.0


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


def test_graceful_stop_closes_open_websockets_with_1001() -> None:
    async def scenario() -> None:
        async with serving(echo_app) as port:
            ws = await connect(f"ws://127.0.0.1:{port}/")
            await ws.send("before")
            assert await ws.recv() == "before"
        # Leaving `serving` stopped the server: the open WebSocket was closed first.
        with pytest.raises(websockets.ConnectionClosedOK) as closed:
            await ws.recv()
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1001

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
