"""The two-step drain on real sockets (asgi-core's `ServerConnection`): `shutdown()` lets a request in flight
finish and serves a packet that is arriving, closing only a connection that stays idle through
`drain_idle_grace` (nginx opens a connection per request, so a connection without a request yet is usually
one whose request is on its way); `going_away()` tells the app `http.disconnect` and closes, at once, even
under a response that its reader does not take."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

from asgi_core import ASGIApp, Config, Receive, Scope, Send, ServerContext
from asgi_uwsgi import PLUGIN

sys.path.insert(0, str(Path(__file__).resolve().parent))
from uwsgi_client import SCENARIO_TIMEOUT, Response, connect, echo_app, packet, parse_response, read_to_close

T = TypeVar("T")


@asynccontextmanager
async def server(app: ASGIApp, config: Config | None = None) -> AsyncIterator[tuple[ServerContext, int]]:
    """A bare asyncio server whose drain steps the test calls itself, as asgi-core's Server would."""
    context = ServerContext(app=app, config=config or Config(lifespan="off"))
    loop = asyncio.get_running_loop()
    listener = await loop.create_server(lambda: PLUGIN.create_protocol(context), "127.0.0.1", 0)
    try:
        yield context, listener.sockets[0].getsockname()[1]
    finally:
        listener.close()
        for connection in list(context.connections):
            connection.going_away()
        await listener.wait_closed()


def run(main: Callable[[], Awaitable[T]]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(main(), SCENARIO_TIMEOUT)

    return asyncio.run(bounded())


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"condition not met within {timeout} s")


async def read_until_close_or_reset(reader: asyncio.StreamReader) -> tuple[bytes, bool]:
    received = b""
    try:
        while chunk := await asyncio.wait_for(reader.read(65536), 5):
            received += chunk
    except ConnectionResetError:
        return received, True
    return received, False


# ---- step 1: shutdown --------------------------------------------------------------------------------


def test_shutdown_serves_a_packet_whose_bytes_are_arriving() -> None:
    data = packet("POST", "/arriving", body=b"payload")

    async def main() -> Response:
        async with server(echo_app) as (context, port):
            reader, writer = await connect(port)
            writer.write(data[:10])  # the packet's head, cut in the middle of its variables
            await until(lambda: bool(context.connections))
            await asyncio.sleep(0.05)
            context.drain_connections()
            await asyncio.sleep(0.05)
            writer.write(data[10:])
            response = parse_response(await read_to_close(reader))
            writer.close()
            return response

    info = run(main).json()
    assert info["path"] == "/arriving"
    assert info["size"] == len(b"payload")


def test_shutdown_serves_a_packet_that_arrives_within_the_idle_grace() -> None:
    async def main() -> Response:
        async with server(echo_app, Config(lifespan="off", drain_idle_grace=5)) as (context, port):
            reader, writer = await connect(port)
            await until(lambda: bool(context.connections))
            context.drain_connections()  # no byte yet: nginx's request may be on its way
            await asyncio.sleep(0.2)
            writer.write(packet("GET", "/late"))
            response = parse_response(await read_to_close(reader))
            writer.close()
            return response

    assert run(main).json()["path"] == "/late"


def test_shutdown_closes_a_connection_idle_through_the_grace() -> None:
    async def main() -> tuple[bytes, int]:
        async with server(echo_app, Config(lifespan="off", drain_idle_grace=0.2)) as (context, port):
            reader, writer = await connect(port)
            await until(lambda: bool(context.connections))
            context.drain_connections()
            raw = await read_to_close(reader)
            writer.close()
            await until(lambda: not context.connections)
            return raw, len(context.connections)

    assert run(main) == (b"", 0)


def test_connection_made_during_the_drain_starts_in_step_1() -> None:
    async def main() -> tuple[Response, bytes]:
        async with server(echo_app, Config(lifespan="off", drain_idle_grace=0.3)) as (context, port):
            context.drain_connections()
            busy_reader, busy_writer = await connect(port)
            idle_reader, idle_writer = await connect(port)
            busy_writer.write(packet("GET", "/during-drain"))
            busy = parse_response(await read_to_close(busy_reader))
            idle = await read_to_close(idle_reader)  # closed once the grace passes
            busy_writer.close()
            idle_writer.close()
            return busy, idle

    busy, idle = run(main)
    assert busy.json()["path"] == "/during-drain"
    assert idle == b""


def test_shutdown_lets_the_request_in_flight_finish() -> None:
    release = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await release.wait()
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"finished"})

    async def main() -> Response:
        async with server(app, Config(lifespan="off", drain_idle_grace=0.1)) as (context, port):
            reader, writer = await connect(port)
            writer.write(packet())
            await until(lambda: bool(context.connections))
            await asyncio.sleep(0.3)  # past the idle grace: a request in flight is not idle
            context.drain_connections()
            await asyncio.sleep(0.3)
            release.set()
            response = parse_response(await read_to_close(reader))
            writer.close()
            return response

    assert run(main).body == b"finished"


# ---- step 2: going_away ------------------------------------------------------------------------------


def test_going_away_gives_a_waiting_request_http_disconnect_and_closes() -> None:
    heard: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        assert (await receive())["type"] == "http.request"
        heard.append((await receive())["type"])  # waits: the request is complete, nothing more comes

    async def main() -> tuple[bytes, bool]:
        async with server(app) as (context, port):
            reader, writer = await connect(port)
            writer.write(packet("POST", body=b"x"))
            await until(lambda: bool(context.connections))
            await asyncio.sleep(0.1)
            context.drain_connections()
            context.close_connections()
            outcome = await read_until_close_or_reset(reader)
            await until(lambda: bool(heard))
            writer.close()
            return outcome

    received, _ = run(main)
    assert received == b""  # no response to nginx: it answers its client 502
    assert heard == ["http.disconnect"]


def test_going_away_under_a_response_nobody_reads_tells_the_app_and_cuts_it() -> None:
    outcome: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200})
        chunk = b"s" * 65536
        try:
            while True:  # an endless stream to a reader that takes nothing: the app waits in send()
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except OSError as exc:  # ClientDisconnected
            outcome.append(type(exc).__name__)

    async def main() -> bool:
        async with server(app) as (context, port):
            reader, writer = await connect(port)
            writer.write(packet())
            await until(lambda: bool(context.connections))
            await asyncio.sleep(0.5)  # the kernel's buffers and the transport's fill up
            context.drain_connections()
            await asyncio.sleep(0.1)
            assert not outcome, "step 1 must not end a response in flight"
            context.close_connections()
            await until(lambda: bool(outcome))
            await until(lambda: not context.connections)
            _, reset = await read_until_close_or_reset(reader)
            writer.close()
            return reset

    reset = run(main)
    assert outcome == ["ClientDisconnected"]
    assert reset  # a cut response must read as an error to nginx, not as a body ended by a clean close
