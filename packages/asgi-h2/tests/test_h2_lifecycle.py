"""A connection's life: graceful shutdown with GOAWAY, the keep-alive idle timeout, the peer's GOAWAY, a lost
transport, and membership in the server's live-connection set."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from asgi_core import Config, Receive, Scope, Send
from asgi_h2 import H2Protocol
from h2.errors import ErrorCodes
from hyperframe.frame import DataFrame, GoAwayFrame, HeadersFrame, PingFrame, RstStreamFrame

# The shared peer (h2_peer.py) sits beside this file; pytest's importlib mode does not put it on sys.path.
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from h2_peer import H2Peer, MemoryTransport, parse_frames, run


def test_graceful_shutdown_finishes_in_flight_streams_then_closes() -> None:
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
        (goaway,) = [f for f in parse_frames(peer.transport.take()) if isinstance(f, GoAwayFrame)]
        assert (goaway.error_code, goaway.last_stream_id) == (ErrorCodes.NO_ERROR, slow)
        assert not peer.transport.closed  # the in-flight stream is still being served
        # A stream the client opened anyway (its HEADERS crossed our GOAWAY) is refused, not served.
        late = slow + 2
        block = peer.client.encoder.encode(
            [(b":method", b"GET"), (b":path", b"/late"), (b":scheme", b"https"), (b":authority", b"example.org")]
        )
        peer.send_raw(HeadersFrame(late, data=block, flags=["END_HEADERS", "END_STREAM"]).serialize())
        release.set()
        for _ in range(100):
            if peer.transport.closed:
                break
            await asyncio.sleep(0.001)
        assert peer.transport.closed
        frames = parse_frames(peer.transport.take())
        refused = [f for f in frames if isinstance(f, RstStreamFrame)]
        assert [(f.stream_id, f.error_code) for f in refused] == [(late, ErrorCodes.REFUSED_STREAM)]
        body = [f for f in frames if isinstance(f, DataFrame) and f.stream_id == slow]
        assert b"".join(f.data for f in body) == b"/slow"
        assert "END_STREAM" in body[-1].flags
        assert calls == ["/slow"]
        await asyncio.sleep(0)
        assert peer.protocol not in peer.context.connections

    run(main())


def test_shutdown_of_an_idle_connection_closes_at_once() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("no request in this test")

    async def main() -> None:
        peer = H2Peer(app)
        peer.protocol.shutdown()
        peer.receive()
        assert peer.goaway is not None
        assert peer.goaway.last_stream_id == 0
        assert peer.transport.closed

    run(main())


def test_a_connection_made_while_draining_is_turned_away() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("no request in this test")

    async def main() -> None:
        peer = H2Peer(app)
        peer.context.draining = True
        late = H2Peer(app, context=peer.context)
        late.receive()
        assert late.goaway is not None
        assert late.goaway.error_code == ErrorCodes.NO_ERROR
        assert late.transport.closed

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
