"""The slow-reader rule on HTTP/2, measured: clients that ask for a lot and read nothing hold a bounded amount of
the server's memory, whatever the size of the responses.

Bounds that make it so: a stream holds at most `write_buffer_high_water` plus the app message it is sending
(`_stream`), the transport at most its high-water mark plus a frame (`H2Protocol._pump`), and a connection
whose write buffer is full reads nothing more (`H2Protocol.pause_writing`). The apps here send one shared body, so what
grows is what the server itself holds (the 64 MiB streams make a new message each time, so a message queued
beyond the bounds shows); the scenario follows the HTTP/1.1 one of the issue (8 connections, 32
requests of 1 MiB and two 64 MiB streams each), with clients that read nothing instead of 1 KiB/s.
"""

from __future__ import annotations

import asyncio
import gc
import socket
import sys
import tracemalloc
from pathlib import Path

from asgi_core import Config, Receive, Registry, Scope, Send, ServerContext
from asgi_h2 import H2Protocol
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.settings import SettingCodes
from hyperframe.frame import DataFrame

# The shared peer (h2_peer.py) sits beside this file; pytest's importlib mode does not put it on sys.path.
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from h2_peer import H2Peer, parse_frames, run

MiB = 1024 * 1024
CONNECTIONS = 8
SMALL = 32
LARGE = 2
ONE_MIB = b"x" * MiB
CHUNK = memoryview(ONE_MIB)[: 64 * 1024]
#: Generous: the bounds above come to a few MiB; without them, this scenario asks for 8 x 160 MiB.
LIMIT = 48 * MiB


def test_clients_that_read_nothing_hold_bounded_memory() -> None:
    streams_started = 0

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal streams_started
        streams_started += 1
        await send({"type": "http.response.start", "status": 200, "headers": []})
        if scope["path"] == "/large":
            for _ in range(64 * MiB // len(CHUNK)):
                # A new message each time, as an app reading a file would make: one queued beyond the bounds
                # would show in the measure.
                await send({"type": "http.response.body", "body": bytes(CHUNK), "more_body": True})
        await send({"type": "http.response.body", "body": ONE_MIB})

    async def main() -> None:
        loop = asyncio.get_running_loop()
        context = ServerContext(app=app, config=Config(), registry=Registry(discover=False))
        server = await loop.create_server(lambda: H2Protocol(context), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        sockets: list[socket.socket] = []
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        try:
            for _ in range(CONNECTIONS):
                client = H2Connection(H2Configuration(client_side=True, header_encoding=None))
                client.local_settings.update({SettingCodes.INITIAL_WINDOW_SIZE: 2**31 - 1})
                client.local_settings.acknowledge()
                client.initiate_connection()
                client.increment_flow_control_window(2**31 - 1 - 65535)
                for index in range(SMALL + LARGE):
                    path = "/large" if index < LARGE else "/small"
                    head = [(":method", "GET"), (":path", path), (":scheme", "http"), (":authority", "x")]
                    client.send_headers(client.get_next_available_stream_id(), head, end_stream=True)
                sock = socket.socket()
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                sock.setblocking(False)
                await loop.sock_connect(sock, ("127.0.0.1", port))
                await loop.sock_sendall(sock, client.data_to_send())
                sockets.append(sock)
            peak = 0
            for _ in range(15):  # 1.5 s of clients that read nothing
                await asyncio.sleep(0.1)
                peak = max(peak, tracemalloc.get_traced_memory()[0] - before)
            assert streams_started == CONNECTIONS * (SMALL + LARGE)  # every app runs, and is held back
            print(f"\nserver memory growth, {CONNECTIONS} unread connections: {peak / MiB:.1f} MiB")  # noqa: T201
            assert peak < LIMIT
        finally:
            tracemalloc.stop()
            for sock in sockets:
                sock.close()
            server.close()
            await server.wait_closed()

    asyncio.run(asyncio.wait_for(main(), 30))


def test_one_round_of_frames_stops_at_the_high_water_mark_and_the_next_starts_where_it_stopped() -> None:
    """Streams take turns, one frame each per round; a round that fills the transport stops there rather than
    adding a frame for every stream past the mark, and the streams it did not reach go first next time."""
    high = Config().write_buffer_high_water
    count = 20

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": ONE_MIB[: 256 * 1024]})

    async def main() -> None:
        peer = H2Peer(app, client_settings={SettingCodes.INITIAL_WINDOW_SIZE: 2**31 - 1}, write_buffer=high)
        peer.client.increment_flow_control_window(2**31 - 1 - 65535)
        streams = [peer.request() for _ in range(count)]
        for _ in range(20):
            await asyncio.sleep(0)
        assert peer.transport.writing_paused
        # One frame past the mark at most (and the response heads), not one per stream.
        assert len(peer.transport.out) <= high + 2 * 16 * 1024
        order: list[int] = []
        while len(set(order)) < count:
            order += [f.stream_id for f in parse_frames(peer.transport.take()) if isinstance(f, DataFrame)]
            for _ in range(5):
                await asyncio.sleep(0)
        # Every stream had its first frame before any had a second one... give or take one round's rotation.
        assert len(order) <= count + 4, order
        assert set(order) == set(streams)

    run(main())
