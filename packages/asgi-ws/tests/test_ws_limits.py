"""Bounds a client cannot push past: message size (inflated, for compressed messages), the receive queue with
read backpressure, write backpressure for a slow client, and keepalive pings with their timeout."""

from __future__ import annotations

import asyncio
import tracemalloc
import zlib

import pytest
from asgi_core import Config, Receive, Scope, Send
from ws_peer import Peer, Recorder, echo, run, until
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage

MiB = 1024 * 1024


def masked_frame(first_byte: int, payload: bytes) -> bytes:
    """A client frame with a zero mask, so the payload bytes are what is sent."""
    length = len(payload)
    if length < 126:
        header = bytes([first_byte, 0x80 | length])
    elif length < 65536:
        header = bytes([first_byte, 0x80 | 126]) + length.to_bytes(2, "big")
    else:
        header = bytes([first_byte, 0x80 | 127]) + length.to_bytes(8, "big")
    return header + b"\x00\x00\x00\x00" + payload


def deflated(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    out = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return out[:-4]


@pytest.mark.parametrize("fragmented", [False, True])
def test_message_over_the_size_limit_closes_1009(fragmented: bool) -> None:
    async def scenario() -> None:
        app = Recorder(echo)
        peer = Peer(app, config=Config(websocket_max_message_size=1000))
        await peer.open()
        peer.send(BytesMessage(data=b"x" * 1000))  # exactly the limit is fine
        event = await peer.next_event()
        assert isinstance(event, BytesMessage)
        assert len(event.data) == 1000
        if fragmented:
            for _ in range(10):
                peer.send(TextMessage(data="y" * 100, message_finished=False))
            peer.send(TextMessage(data="y"))
        else:
            peer.send(TextMessage(data="y" * 1001))
        close = await peer.next_event()
        assert isinstance(close, CloseConnection)
        assert close.code == 1009
        peer.protocol.connection_lost(None)
        await asyncio.wait_for(app.done.wait(), 2)
        assert app.received[-1]["code"] == 1009
        assert len(app.received) == 3

    run(scenario())


def test_deflate_is_negotiated_and_used_both_ways() -> None:
    async def scenario() -> None:
        peer = Peer(Recorder(echo), deflate=True)
        accepted = await peer.open()
        assert accepted is not None
        assert [ext.name for ext in accepted.extensions] == ["permessage-deflate"]
        text = "the same words again and again " * 200
        assert peer.ws is not None
        raw = peer.ws.send(TextMessage(data=text))
        assert raw[0] & 0x40  # RSV1: our client compressed it
        assert len(raw) < len(text) // 4
        peer.send_raw(raw)
        await until(lambda: bool(peer.transport.data))
        reply = bytes(peer.transport.data)
        assert reply[0] & 0x40  # and the server compressed its answer
        assert len(reply) < len(text) // 4
        event = await peer.next_event()
        assert isinstance(event, TextMessage)
        assert event.data == text
        peer.protocol.connection_lost(None)

    run(scenario())


def test_deflate_can_be_turned_off() -> None:
    async def scenario() -> None:
        peer = Peer(Recorder(echo), deflate=True, config=Config(websocket_per_message_deflate=False))
        accepted = await peer.open()
        assert accepted is not None
        assert accepted.extensions == []
        peer.send(TextMessage(data="plain"))
        await until(lambda: bool(peer.transport.data))
        assert not peer.transport.data[0] & 0x40
        peer.protocol.connection_lost(None)

    run(scenario())


def test_deflate_bomb_is_refused_without_inflating_it() -> None:
    bomb = deflated(b"\x00" * (64 * MiB))  # about 64 KiB on the wire
    assert len(bomb) < 100_000

    async def scenario() -> None:
        app = Recorder()
        peer = Peer(app, deflate=True, config=Config(websocket_max_message_size=MiB))
        await peer.open()
        tracemalloc.start()
        try:
            peer.send_raw(masked_frame(0xC2, bomb))  # FIN, RSV1, binary
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 8 * MiB  # never the 64 MiB it inflates to
        close = await peer.next_event()
        assert isinstance(close, CloseConnection)
        assert close.code == 1009
        peer.protocol.connection_lost(None)
        await asyncio.wait_for(app.done.wait(), 2)
        assert [m["type"] for m in app.received] == ["websocket.connect", "websocket.disconnect"]

    run(scenario())


def test_compressed_message_counts_inflated_bytes() -> None:
    async def scenario() -> None:
        app = Recorder()
        peer = Peer(app, deflate=True, config=Config(websocket_max_message_size=10_000))
        await peer.open()
        peer.send_raw(masked_frame(0xC1, deflated(b"a" * 10_000)))  # exactly at the limit once inflated
        peer.send_raw(masked_frame(0xC1, deflated(b"b" * 10_001)))
        close = await peer.next_event()
        assert isinstance(close, CloseConnection)
        assert close.code == 1009
        peer.protocol.connection_lost(None)
        await asyncio.wait_for(app.done.wait(), 2)
        assert app.received[1] == {"type": "websocket.receive", "text": "a" * 10_000}

    run(scenario())


def test_corrupt_deflate_data_is_1007() -> None:
    async def scenario() -> None:
        peer = Peer(Recorder(), deflate=True)
        await peer.open()
        peer.send_raw(masked_frame(0xC2, b"\xff\xff\xff\xff not deflate"))
        close = await peer.next_event()
        assert isinstance(close, CloseConnection)
        assert close.code == 1007
        peer.protocol.connection_lost(None)

    run(scenario())


def test_receive_queue_is_bounded_and_reading_pauses() -> None:
    gate = asyncio.Event()
    received: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await gate.wait()
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            received.append(message["text"])

    async def scenario() -> None:
        peer = Peer(app, config=Config(websocket_max_queue=3))
        await peer.open()
        assert peer.ws is not None
        # Ten messages arrive in one read; the app is busy elsewhere.
        peer.send_raw(b"".join(peer.ws.send(TextMessage(data=f"m{i}")) for i in range(10)))
        session = peer.protocol.session
        assert session is not None
        assert not peer.transport.reading  # queue full: stop reading from this client
        assert session.queue_full
        assert len(session._queue) == 3  # the rest waits, still unparsed, in wsproto's buffer
        peer.send(Ping(payload=b"p"))  # nothing is parsed while paused, pings included
        gate.set()
        await until(lambda: len(received) == 10)
        assert received == [f"m{i}" for i in range(10)]
        assert peer.transport.reading
        pong = await peer.next_event()
        assert isinstance(pong, Pong)
        peer.protocol.connection_lost(None)

    run(scenario())


def test_sending_app_waits_for_a_slow_client() -> None:
    sent = 0

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal sent
        await receive()
        await send({"type": "websocket.accept"})
        for _ in range(5):
            await send({"type": "websocket.send", "bytes": b"z" * 1000})
            sent += 1

    async def scenario() -> None:
        config = Config(websocket_per_message_deflate=False, write_buffer_high_water=4096)
        peer = Peer(app, config=config)
        peer.start()
        assert peer.transport.high_water == 4096
        peer.protocol.pause_writing()  # the transport's buffer is over its high-water mark
        await peer.answer()
        await asyncio.sleep(0.05)
        assert sent == 0  # the first send wrote its frame and waits for the drain
        peer.protocol.resume_writing()
        await until(lambda: sent == 5)
        peer.protocol.connection_lost(None)

    run(scenario())


def test_server_pings_an_idle_client_and_drops_it_without_pong() -> None:
    async def scenario() -> None:
        app = Recorder()
        peer = Peer(app, config=Config(websocket_ping_interval=0.05, websocket_ping_timeout=0.1))
        await peer.open()
        ping = await peer.next_event()
        assert isinstance(ping, Ping)
        peer.send(ping.response())  # answered: the connection lives on
        ping = await peer.next_event()
        assert isinstance(ping, Ping)
        await peer.closed()  # this one is not answered
        assert peer.transport.aborted
        close = await peer.next_event()
        assert isinstance(close, CloseConnection)
        assert close.code == 1011
        await asyncio.wait_for(app.done.wait(), 2)
        assert app.received[-1]["code"] == 1011

    run(scenario())


def test_a_talking_client_is_not_pinged_and_pings_can_be_disabled() -> None:
    async def scenario() -> None:
        busy = Peer(Recorder(), config=Config(websocket_ping_interval=0.1))
        await busy.open()
        quiet = Peer(Recorder(), config=Config(websocket_ping_interval=None))
        await quiet.open()
        for _ in range(8):
            busy.send(TextMessage(data="still here"))
            await asyncio.sleep(0.03)
        assert not busy.transport.data
        assert not quiet.transport.data
        busy.protocol.connection_lost(None)
        quiet.protocol.connection_lost(None)

    run(scenario())
