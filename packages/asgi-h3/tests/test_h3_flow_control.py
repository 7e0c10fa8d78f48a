"""Backpressure both ways through QUIC flow control, with aioquic's client as the peer (paired in memory): a
request body the app does not read stays within the stream's window, and a response the client does not
acknowledge holds its app back."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from asgi_core import Config, Receive, Scope, Send
from asgi_h3 import H3Limits
from asgi_h3._request import RequestStream

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from h3_peer import H3Peer, certificate_files

WINDOW = 64 * 1024


def test_request_body_credit_follows_what_the_app_reads(tmp_path: Path) -> None:
    body = b"x" * (4 * 1024 * 1024)
    reading = asyncio.Event()
    received = 0

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal received
        await reading.wait()
        more = True
        while more:
            message = await receive()
            received += len(message.get("body", b""))
            more = message.get("more_body", False)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(received).encode()})

    async def main() -> None:
        limits = H3Limits(max_stream_data=WINDOW, max_data=16 * WINDOW)
        peer = H3Peer(app, certificate_files(tmp_path), limits=limits)
        await peer.connect()
        stream_id = peer.request(b"/upload", method=b"POST", body=body)
        for _ in range(20):
            await peer.settle()
        stream = peer.protocol.streams[stream_id]
        assert isinstance(stream, RequestStream)
        cycle = stream.cycle
        assert cycle is not None
        assert 0 < cycle.buffered_body <= 2 * WINDOW  # held back by the window, not the whole 4 MiB
        reading.set()
        result = await peer.response(stream_id)
        assert bytes(result.body) == str(len(body)).encode()

    asyncio.run(main())


def test_response_waits_while_the_client_acknowledges_nothing(tmp_path: Path) -> None:
    sent = 0
    go = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal sent
        await go.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for _ in range(200):
            await send({"type": "http.response.body", "body": b"y" * 16384, "more_body": True})
            sent += 16384
        await send({"type": "http.response.body", "body": b""})

    async def main() -> None:
        config = Config(write_buffer_high_water=128 * 1024)
        peer = H3Peer(app, certificate_files(tmp_path), config=config)
        await peer.connect()
        stream_id = peer.request(b"/download")
        await peer.settle()
        peer.hold_server = True  # nothing the server sends from here reaches the client, which acknowledges none
        go.set()
        for _ in range(50):
            await peer.settle(quiet_rounds=1)
        assert sent <= 256 * 1024  # the app is held near the high-water mark, not 3 MiB ahead
        peer.hold_server = False
        result = await peer.response(stream_id)
        assert len(result.body) == 200 * 16384

    asyncio.run(main())
