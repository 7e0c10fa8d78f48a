"""Extended CONNECT (RFC 9220): a request stream handed to the upgrade handler of its `:protocol`, with a
stand-in handler (an upper-casing echo) and aioquic's client as the peer, paired in memory."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from asgi_core import Registry, ServerContext, StreamTransport, UpgradeRequest

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from h3_peer import H3Peer, StreamResult, certificate_files

EVENTS: list[str] = []


class Shouting(asyncio.Protocol):
    """Accepts with 200, answers every chunk upper-cased, ends its side when the client ends its own."""

    def __init__(self, request: UpgradeRequest) -> None:
        self.request = request

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: StreamTransport = transport  # type: ignore[assignment]
        EVENTS.append(f"made {self.request.http_version} {self.request.target.decode()}")
        self.transport.send_head(200, [(b"x-tunnel", b"yes")])

    def data_received(self, data: bytes) -> None:
        self.transport.write(data.upper())

    def eof_received(self) -> bool:
        EVENTS.append("eof")
        self.transport.write_eof()  # type: ignore[attr-defined]
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        EVENTS.append("lost")


class ShoutHandler:
    token = "shout"

    def accepts(self, request: UpgradeRequest) -> bool:
        return request.target != b"/refused"

    def create_protocol(self, context: ServerContext, request: UpgradeRequest) -> asyncio.Protocol:
        return Shouting(request)


async def unused_app(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError("a CONNECT never reaches the app")


def peer_with_handler(tmp_path: Path) -> H3Peer:
    peer = H3Peer(unused_app, certificate_files(tmp_path))
    registry = Registry(discover=False)
    registry.add_upgrade(ShoutHandler())
    peer.context.registry = registry
    return peer


def connect_headers(protocol: bytes) -> list[tuple[bytes, bytes]]:
    return [(b":protocol", protocol)]


def test_tunnel_carries_data_both_ways_and_ends_with_both_sides(tmp_path: Path) -> None:
    EVENTS.clear()

    async def main() -> None:
        peer = peer_with_handler(tmp_path)
        await peer.connect()
        stream_id = peer.request(b"/chat", method=b"CONNECT", headers=connect_headers(b"shout"), end=False)
        result = peer.results[stream_id]
        await peer.until(lambda: bool(result.heads))
        assert result.status == 200
        assert result.headers[b"x-tunnel"] == b"yes"
        peer.send_data(stream_id, b"hello ", end=False)
        peer.send_data(stream_id, b"there", end=False)
        await peer.until(lambda: bytes(result.body) == b"HELLO THERE")
        assert not result.ended
        peer.send_data(stream_id, b"", end=True)
        await peer.response(stream_id)
        assert result.ended
        await peer.until(lambda: EVENTS[-1:] == ["lost"])
        assert peer.protocol.streams == {}

    asyncio.run(main())
    assert EVENTS == ["made 3 /chat", "eof", "lost"]


def test_client_reset_reaches_the_tunnel_as_connection_lost(tmp_path: Path) -> None:
    EVENTS.clear()

    async def main() -> None:
        peer = peer_with_handler(tmp_path)
        await peer.connect()
        stream_id = peer.request(b"/chat", method=b"CONNECT", headers=connect_headers(b"shout"), end=False)
        await peer.until(lambda: bool(peer.results[stream_id].heads))
        peer.reset(stream_id)
        await peer.until(lambda: EVENTS[-1:] == ["lost"])
        assert peer.protocol.streams == {}

    asyncio.run(main())


def test_unknown_protocol_is_501_and_a_refused_request_400(tmp_path: Path) -> None:
    async def main() -> None:
        peer = peer_with_handler(tmp_path)
        await peer.connect()
        unknown = peer.request(b"/chat", method=b"CONNECT", headers=connect_headers(b"websocket"), end=False)
        assert (await peer.response(unknown)).status == 501
        refused = peer.request(b"/refused", method=b"CONNECT", headers=connect_headers(b"shout"), end=False)
        assert (await peer.response(refused)).status == 400
        plain = peer.quic.get_next_available_stream_id()  # a CONNECT to a host: no proxying here
        peer.h3.send_headers(plain, [(b":method", b"CONNECT"), (b":authority", b"example.com:443")])
        peer.results[plain] = StreamResult()
        assert (await peer.response(plain)).status == 501
        ok = peer.request(b"/chat", method=b"CONNECT", headers=connect_headers(b"shout"), end=False)
        await peer.until(lambda: bool(peer.results[ok].heads))
        assert peer.results[ok].status == 200

    asyncio.run(main())
