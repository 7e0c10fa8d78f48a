"""A connection's life: graceful shutdown with GOAWAY, the keep-alive idle timeout, the peer's GOAWAY, a lost
transport, and membership in the server's live-connection set."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from asgi_core import Config, Receive, Scope, Send
from asgi_h2 import H2Protocol
from h2.errors import ErrorCodes
from hyperframe.frame import DataFrame, Frame, GoAwayFrame, HeadersFrame, PingFrame, RstStreamFrame

# The shared peer (h2_peer.py) sits beside this file; pytest's importlib mode does not put it on sys.path.
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from h2_peer import H2Peer, MemoryTransport, parse_frames, run

MAX_STREAM_ID = 2**31 - 1
GET_BLOCK = [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"example.org")]


def raw_request(peer: H2Peer, stream_id: int, path: bytes) -> None:
    """HEADERS written past h2's client, which stops opening streams once it has read a GOAWAY."""
    block = peer.client.encoder.encode([*GET_BLOCK, (b":path", path)])
    peer.send_raw(HeadersFrame(stream_id, data=block, flags=["END_HEADERS", "END_STREAM"]).serialize())


def goaways(frames: list[Frame]) -> list[tuple[int, int]]:
    return [(f.last_stream_id, f.error_code) for f in frames if isinstance(f, GoAwayFrame)]


def ack_drain_ping(peer: H2Peer, frames: list[Frame]) -> None:
    (ping,) = [f for f in frames if isinstance(f, PingFrame) and "ACK" not in f.flags]
    peer.send_raw(PingFrame(0, opaque_data=ping.opaque_data, flags=["ACK"]).serialize())


def body_of(frames: list[Frame], stream_id: int) -> bytes:
    data = [f for f in frames if isinstance(f, DataFrame) and f.stream_id == stream_id]
    assert data, f"nothing sent on stream {stream_id}"
    assert "END_STREAM" in data[-1].flags
    return b"".join(f.data for f in data)


async def closed(peer: H2Peer, timeout: float = 2.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not peer.transport.closed:
        assert asyncio.get_running_loop().time() < deadline, "the connection stayed open"
        await asyncio.sleep(0.001)


def test_graceful_shutdown_sends_two_goaways_and_serves_a_stream_opened_between_them() -> None:
    release = asyncio.Event()
    calls: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        calls.append(scope["path"])
        if scope["path"] == "/slow":
            await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": scope["path"].encode()})

    async def main() -> None:
        peer = H2Peer(app)
        assert peer.protocol in peer.context.connections
        slow = peer.request("GET", "/slow")
        await peer.settle()
        peer.context.drain_connections()  # what a server does on SIGTERM
        # From here the wire is read frame by frame: h2's client stops processing at a GOAWAY.
        frames = parse_frames(peer.transport.take())
        # RFC 9113 section 6.8, step 1: "stop opening streams", refusing none, and a PING to time the round trip.
        assert goaways(frames) == [(MAX_STREAM_ID, ErrorCodes.NO_ERROR)]
        # A stream the client opened before it read the GOAWAY is served.
        between = slow + 2
        raw_request(peer, between, b"/between")
        await asyncio.sleep(0.01)
        ack_drain_ping(peer, frames)
        await asyncio.sleep(0)
        frames += parse_frames(peer.transport.take())
        # Step 2, on the PING's acknowledgement: the real last stream.
        assert goaways(frames) == [(MAX_STREAM_ID, ErrorCodes.NO_ERROR), (between, ErrorCodes.NO_ERROR)]
        # Later streams are refused, which the second GOAWAY lets the client retry elsewhere.
        late = between + 2
        raw_request(peer, late, b"/late")
        assert not peer.transport.closed  # /slow is still in flight
        release.set()
        await closed(peer)
        frames += parse_frames(peer.transport.take())
        refused = [(f.stream_id, f.error_code) for f in frames if isinstance(f, RstStreamFrame)]
        assert refused == [(late, ErrorCodes.REFUSED_STREAM)]
        assert body_of(frames, slow) == b"/slow"
        assert body_of(frames, between) == b"/between"
        assert calls == ["/slow", "/between"]
        await asyncio.sleep(0)
        assert peer.protocol not in peer.context.connections

    run(main())


def test_shutdown_of_an_idle_connection_closes_after_the_ping_round_trip() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("no request in this test")

    async def main() -> None:
        peer = H2Peer(app)
        peer.protocol.shutdown()
        frames = parse_frames(peer.transport.take())
        assert goaways(frames) == [(MAX_STREAM_ID, ErrorCodes.NO_ERROR)]
        assert not peer.transport.closed  # a request may be on its way
        ack_drain_ping(peer, frames)
        frames = parse_frames(peer.transport.take())
        assert goaways(frames) == [(0, ErrorCodes.NO_ERROR)]
        await closed(peer)

    run(main())


def test_a_connection_made_while_draining_serves_what_its_client_sent_first() -> None:
    """Without the PING's acknowledgement the second GOAWAY goes after a short timeout."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"served"})

    async def main() -> None:
        peer = H2Peer(app)
        peer.context.draining = True
        late = H2Peer(app, context=peer.context)
        stream = late.request()  # sent with the preface, before the client read anything
        await asyncio.sleep(0.01)
        frames = parse_frames(late.transport.take())
        assert goaways(frames) == [(MAX_STREAM_ID, ErrorCodes.NO_ERROR)]
        assert body_of(frames, stream) == b"served"
        assert not late.transport.closed  # the PING is never acknowledged: the drain waits for its timeout
        await closed(late, timeout=3)
        assert goaways(parse_frames(late.transport.take())) == [(stream, ErrorCodes.NO_ERROR)]

    run(main())


def test_going_away_resets_open_streams_tells_their_apps_and_closes() -> None:
    seen: list[str] = []
    sent = 0

    async def streaming(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal sent
        await send({"type": "http.response.start", "status": 200, "headers": []})

        async def stream_forever() -> None:
            nonlocal sent
            while True:
                await send({"type": "http.response.body", "body": b"tick", "more_body": True})
                sent += 1
                await asyncio.sleep(0.005)

        task = asyncio.create_task(stream_forever())
        assert (await receive())["type"] == "http.request"
        seen.append((await receive())["type"])  # returns when the client (or the server) goes away
        task.cancel()

    async def main() -> None:
        peer = H2Peer(streaming)
        stream = peer.request()
        await peer.until(lambda: len(peer.streams[stream].data) >= 8)
        peer.protocol.shutdown()
        await asyncio.sleep(0.02)
        frames = parse_frames(peer.transport.take())
        assert goaways(frames) == [(MAX_STREAM_ID, ErrorCodes.NO_ERROR)]
        peer.context.close_connections()  # the drain's time is up
        frames = parse_frames(peer.transport.take())
        assert [(f.stream_id, f.error_code) for f in frames if isinstance(f, RstStreamFrame)] == [
            (stream, ErrorCodes.CANCEL)
        ]
        assert goaways(frames) == [(stream, ErrorCodes.NO_ERROR)]
        assert isinstance(frames[-1], GoAwayFrame)
        await closed(peer)
        await asyncio.sleep(0.02)
        assert seen == ["http.disconnect"]

    run(main())


def test_going_away_refuses_a_stream_whose_app_never_started() -> None:
    async def stubborn(scope: Scope, receive: Receive, send: Send) -> None:
        await asyncio.sleep(3600)  # ignores http.disconnect, keeping its task (and the only app slot)

    async def main() -> None:
        peer = H2Peer(stubborn, config=Config(http2_max_concurrent_streams=1, disconnect_grace_period=None))
        first = peer.request()
        await peer.settle()
        peer.client.reset_stream(first)
        peer.flush()
        second = peer.request()  # admitted, but waits for the first app's slot
        await peer.settle()
        peer.protocol.going_away()
        frames = parse_frames(peer.transport.take())
        assert [(f.stream_id, f.error_code) for f in frames if isinstance(f, RstStreamFrame)] == [
            (second, ErrorCodes.REFUSED_STREAM)
        ]
        assert goaways(frames) == [(second, ErrorCodes.NO_ERROR)]
        await closed(peer)
        for task in asyncio.all_tasks() - {asyncio.current_task()}:
            task.cancel()

    run(main())


def test_idle_timeout_closes_without_streams_and_pings_do_not_extend_it() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for _ in range(5):
            await asyncio.sleep(0.1)
            await send({"type": "http.response.body", "body": b".", "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async def main() -> None:
        peer = H2Peer(app, config=Config(keep_alive_timeout=0.3))
        stream = peer.request()
        result = await peer.response(stream)  # 0.5 s of streaming: longer than the idle timeout
        assert bytes(result.data) == b"....."
        assert not peer.transport.closed
        for _ in range(5):
            peer.send_raw(PingFrame(0, opaque_data=b"keepidle").serialize())
            await asyncio.sleep(0.08)
        await peer.until(lambda: peer.transport.closed, timeout=1)
        peer.receive()
        assert peer.goaway is not None
        assert (peer.goaway.error_code, peer.goaway.additional_data) == (ErrorCodes.NO_ERROR, b"idle")

    run(main())


def test_a_client_that_never_asks_is_closed_after_the_head_timeout() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("no request in this test")

    async def main() -> None:
        peer = H2Peer(app, config=Config(header_timeout=0.05, keep_alive_timeout=60))
        await peer.until(lambda: peer.transport.closed, timeout=2)
        peer.receive()
        assert peer.goaway is not None
        assert peer.goaway.error_code == ErrorCodes.NO_ERROR

    run(main())


def test_peer_goaway_and_lost_transport_disconnect_the_apps() -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append((await receive())["type"])

    async def scenario(how: str) -> None:
        peer = H2Peer(app)
        peer.request("POST", f"/{how}", end=False)
        await peer.settle()
        if how == "goaway":
            peer.client.close_connection()
            peer.flush()
        else:
            peer.transport.close()
        await peer.until(lambda: len(seen) == 1)
        assert peer.transport.closed
        await asyncio.sleep(0)
        assert peer.protocol not in peer.context.connections

    for how in ("goaway", "lost"):
        seen.clear()
        run(scenario(how))
        assert seen == ["http.disconnect"]


def test_protocol_errors_close_with_the_matching_code() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("never reached")

    async def main() -> None:
        peer = H2Peer(app)
        peer.send_raw(b"\x00\x00\x08\x06\x00\x00\x00\x00\x01" + b"12345678")  # PING on stream 1: illegal
        peer.receive()
        assert peer.goaway is not None
        assert peer.goaway.error_code == ErrorCodes.PROTOCOL_ERROR
        assert peer.transport.closed
        protocol = H2Protocol(peer.context)
        transport = MemoryTransport(protocol)
        protocol.connection_made(transport)
        protocol.data_received(b"GET / HTTP/1.1\r\n\r\n")  # HTTP/1.1 where the preface belongs
        assert transport.closed

    run(main())
