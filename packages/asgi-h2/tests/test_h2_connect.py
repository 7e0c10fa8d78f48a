"""Extended CONNECT (RFC 8441) with a stand-in upgrade handler registered as `websocket`: the stream handed
over as an `asgi_core.StreamTransport`, data both ways under flow control, the end and reset of the stream,
and refusals. The real WebSocket handler is exercised end to end in tests/test_h2_end_to_end.py."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest
from asgi_core import Receive, Registry, Scope, Send, ServerContext, StreamTransport, UpgradeRequest
from asgi_h2 import _tunnel
from h2.errors import ErrorCodes

# The shared peer (h2_peer.py) sits beside this file; pytest's importlib mode does not put it on sys.path.
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from h2_peer import H2Peer, StreamResult, run

CONNECT = [
    (":method", "CONNECT"),
    (":protocol", "websocket"),
    (":scheme", "https"),
    (":path", "/chat?room=1"),
    (":authority", "example.org"),
    ("sec-websocket-version", "13"),
]


class Tunnelled(asyncio.Protocol):
    """Answers the handshake, echoes upper-cased, and records what the transport did to it."""

    def __init__(self, handler: FakeHandler) -> None:
        self.handler = handler
        self.transport: Any = None
        self.received = bytearray()
        self.lost: list[Exception | None] = []
        self.paused = 0
        self.resumed = 0
        self.eof = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        stream: StreamTransport = transport  # type: ignore[assignment]
        behaviour = self.handler.behaviour
        if behaviour == "deny":
            stream.send_head(403, [(b"content-type", b"text/plain")])
            stream.write(b"denied")
            stream.close()
            return
        stream.send_head(200, [(b"sec-websocket-protocol", b"chat")])
        if behaviour == "flood":
            stream.write(b"f" * 300_000)

    def data_received(self, data: bytes) -> None:
        self.received += data
        if self.handler.behaviour == "half-close":
            if data == b"bye":
                self.transport.write(b"BYE")
                self.transport.write_eof()  # our FIN; the peer's data still comes in
            return
        self.transport.write(data.upper())

    def eof_received(self) -> bool:
        self.eof = True
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.append(exc)

    def pause_writing(self) -> None:
        self.paused += 1

    def resume_writing(self) -> None:
        self.resumed += 1


class FakeHandler:
    token = "websocket"

    def __init__(self, behaviour: str = "echo", *, accept: bool = True) -> None:
        self.behaviour = behaviour
        self.accept = accept
        self.requests: list[UpgradeRequest] = []
        self.protocols: list[Tunnelled] = []

    def accepts(self, request: UpgradeRequest) -> bool:
        self.requests.append(request)
        return self.accept

    def create_protocol(self, context: ServerContext, request: UpgradeRequest) -> asyncio.Protocol:
        protocol = Tunnelled(self)
        self.protocols.append(protocol)
        return protocol


async def no_http(scope: Scope, receive: Receive, send: Send) -> None:
    raise AssertionError("the tunnel must not reach the HTTP app")


def peer_with(handler: FakeHandler, **kwargs: Any) -> H2Peer:
    registry = Registry(discover=False)
    registry.add_upgrade(handler)
    peer = H2Peer(no_http, registry=registry, **kwargs)
    peer.receive()  # the client learns SETTINGS_ENABLE_CONNECT_PROTOCOL before using it
    return peer


def open_tunnel(peer: H2Peer) -> int:
    stream_id = peer.client.get_next_available_stream_id()
    peer.client.send_headers(stream_id, CONNECT)
    peer.streams[stream_id] = StreamResult()
    peer.flush()
    return stream_id


def test_tunnel_carries_data_both_ways_and_ends_like_tcp() -> None:
    handler = FakeHandler()

    async def main() -> None:
        peer = peer_with(handler)
        stream = open_tunnel(peer)
        await peer.until(lambda: peer.streams[stream].headers is not None)
        result = peer.streams[stream]
        assert result.status == 200
        assert result.header(b"sec-websocket-protocol") == b"chat"
        peer.client.send_data(stream, b"hello ")
        peer.client.send_data(stream, b"tunnel")
        peer.flush()
        await peer.until(lambda: bytes(result.data) == b"HELLO TUNNEL")
        peer.client.end_stream(stream)  # the client's FIN
        peer.flush()
        await peer.until(lambda: result.ended)  # ours follows, as the inner protocol's eof_received said
        await peer.settle()
        (protocol,) = handler.protocols
        assert protocol.received == b"hello tunnel"
        assert protocol.lost == [None]
        assert peer.protocol.streams == {}
        assert result.reset is None

    run(main())
    (request,) = handler.requests
    assert (request.method, request.http_version, request.target) == ("CONNECT", "2", b"/chat?room=1")
    assert (b"sec-websocket-version", b"13") in request.headers
    assert (b"host", b"example.org") in request.headers
    assert request.config is not None


def test_refusals_answer_with_a_status() -> None:
    async def main() -> None:
        declined = peer_with(FakeHandler(accept=False))
        assert (await declined.response(open_tunnel(declined))).status == 400
        denied = peer_with(FakeHandler("deny"))
        result = await denied.response(open_tunnel(denied))
        assert (result.status, bytes(result.data)) == (403, b"denied")
        unknown = peer_with(FakeHandler())
        stream = unknown.client.get_next_available_stream_id()
        unknown.client.send_headers(stream, [(n, "something-else" if n == ":protocol" else v) for n, v in CONNECT])
        unknown.flush()
        assert (await unknown.response(stream)).status == 501

    run(main())


def test_tunnel_backpressure_pauses_and_resumes_the_inner_protocol() -> None:
    handler = FakeHandler("flood")

    async def main() -> None:
        peer = peer_with(handler, auto_ack=False)
        stream = open_tunnel(peer)
        await peer.settle()
        (protocol,) = handler.protocols
        assert protocol.paused == 1
        assert len(peer.streams[stream].data) == 65535  # the stream window, nothing more
        peer.auto_ack = True
        peer.client.acknowledge_received_data(65535, stream)
        peer.flush()
        await peer.until(lambda: len(peer.streams[stream].data) == 300_000)
        assert protocol.resumed == 1

    run(main())


def test_reset_and_paused_reading() -> None:
    handler = FakeHandler()

    async def main() -> None:
        peer = peer_with(handler)
        stream = open_tunnel(peer)
        await peer.settle()
        (protocol,) = handler.protocols
        protocol.transport.pause_reading()
        window = peer.client.local_flow_control_window(stream)
        peer.client.send_data(stream, b"held")
        peer.flush()
        await peer.settle()
        assert protocol.received == b""
        assert peer.client.local_flow_control_window(stream) == window - 4  # not acknowledged while held
        protocol.transport.resume_reading()
        assert protocol.received == b"held"
        peer.client.reset_stream(stream, ErrorCodes.CANCEL)
        peer.flush()
        await peer.settle()
        assert len(protocol.lost) == 1
        assert isinstance(protocol.lost[0], ConnectionResetError)
        assert peer.protocol.streams == {}

    run(main())


def test_write_eof_half_closes_and_keeps_reading() -> None:
    handler = FakeHandler("half-close")

    async def main() -> None:
        peer = peer_with(handler)
        stream = open_tunnel(peer)
        await peer.settle()
        (protocol,) = handler.protocols
        assert protocol.transport.can_write_eof()
        peer.client.send_data(stream, b"bye")
        peer.flush()
        result = peer.streams[stream]
        await peer.until(lambda: result.ended)  # our END_STREAM
        assert bytes(result.data) == b"BYE"
        assert protocol.lost == []  # half-closed: the tunnel is still open for reading
        peer.client.send_data(stream, b" and the last words")
        peer.client.end_stream(stream)
        peer.flush()
        await peer.settle()
        assert protocol.received == b"bye and the last words"
        assert protocol.eof
        assert protocol.lost == [None]
        assert result.reset is None  # both sides ended cleanly: no RST_STREAM
        assert peer.protocol.streams == {}

    run(main())


def test_close_waits_briefly_for_the_peer_end_then_resets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_tunnel, "LINGER", 0.05)

    async def scenario(*, peer_ends: bool) -> None:
        handler = FakeHandler("deny")  # answers 403, writes, closes while the client's side is open
        peer = peer_with(handler)
        stream = open_tunnel(peer)
        result = await peer.response(stream)
        assert (result.status, bytes(result.data), result.reset) == (403, b"denied", None)
        await peer.settle()
        assert handler.protocols[0].lost == [None]  # gone for the inner protocol at once
        assert stream in peer.protocol.streams  # the stream waits for the client's END_STREAM
        if peer_ends:
            peer.client.end_stream(stream)
            peer.flush()
            await peer.settle()
            assert result.reset is None
        else:
            await peer.until(lambda: result.reset is not None)
            assert result.reset == ErrorCodes.NO_ERROR
        assert peer.protocol.streams == {}

    run(scenario(peer_ends=True))
    run(scenario(peer_ends=False))
