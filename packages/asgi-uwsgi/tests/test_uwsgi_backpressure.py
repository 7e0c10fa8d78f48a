"""Item 1's rule for uWSGI: a reader that takes the response slowly (nginx with `uwsgi_buffering off` in front
of a slow client) never makes the server hold more of an app's output than the write high-water mark plus
one message of the app. One request per connection, so there is no next request to hold back: the bound
is on the response, through `drain()` between the app's messages, and for `pathsend` through sendfile."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from asgi_core import ASGIApp, Config, Receive, Scope, Send, ServerContext
from asgi_uwsgi import PLUGIN

sys.path.insert(0, str(Path(__file__).resolve().parent))
from uwsgi_client import SCENARIO_TIMEOUT, connect, packet

MESSAGE = 64 * 1024
TOTAL = 64 * 1024 * 1024
HIGH_WATER = 64 * 1024


def stream_app(counter: list[int]) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200})
        chunk = b"r" * MESSAGE
        for _ in range(TOTAL // MESSAGE):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            counter[0] += MESSAGE
        await send({"type": "http.response.body", "body": b""})

    return app


async def slow_reader_scenario(app: ASGIApp, counter: list[int]) -> tuple[int, int]:
    """Read nothing for a while, then 1 KiB every 10 ms; sample the server's write buffer all along. Returns
    the largest buffer seen and the bytes the app got to send in the meantime."""
    context = ServerContext(app=app, config=Config(lifespan="off", write_buffer_high_water=HIGH_WATER))
    loop = asyncio.get_running_loop()
    listener = await loop.create_server(lambda: PLUGIN.create_protocol(context), "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    largest = 0

    def sample() -> None:
        nonlocal largest
        for connection in context.connections:
            size = connection.transport.get_write_buffer_size()  # type: ignore[attr-defined]
            largest = max(largest, size)

    try:
        reader, writer = await connect(port)
        writer.write(packet())
        for _ in range(100):  # 1 s without reading: the kernel's buffers fill, then the transport's
            sample()
            await asyncio.sleep(0.01)
        for _ in range(100):  # then a trickle
            await reader.read(1024)
            sample()
            await asyncio.sleep(0.01)
        sent = counter[0]
        writer.close()
        return largest, sent
    finally:
        listener.close()
        for connection in list(context.connections):
            connection.going_away()
        await listener.wait_closed()


def test_streamed_response_to_a_slow_reader_holds_at_most_high_water_plus_one_message() -> None:
    counter = [0]
    largest, sent = asyncio.run(
        asyncio.wait_for(slow_reader_scenario(stream_app(counter), counter), SCENARIO_TIMEOUT)
    )
    assert largest <= HIGH_WATER + MESSAGE, f"{largest} bytes held for one slow reader"
    # the app was held back: what it sent fits the kernel's socket buffers on loopback and the bound above
    assert sent < 32 * 1024 * 1024, f"the app sent {sent} bytes to a reader that took about 100 KiB"


@pytest.mark.parametrize("size", [48 * 1024 * 1024])
def test_pathsend_to_a_slow_reader_is_not_buffered(tmp_path: Path, size: int) -> None:
    path = tmp_path / "big.bin"
    with path.open("wb") as file:
        file.truncate(size)  # sparse: the size without the disk
    counter = [0]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.pathsend", "path": str(path)})
        counter[0] = size

    largest, _ = asyncio.run(asyncio.wait_for(slow_reader_scenario(app, counter), SCENARIO_TIMEOUT))
    assert largest <= HIGH_WATER + MESSAGE, f"{largest} bytes held for one slow reader"
