"""Limits against abuse on one HTTP/3 connection, with aioquic's client as the peer (paired in memory):
concurrent streams, header size, and a stream-reset flood closed with bounded state."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from asgi_core import ClientDisconnected, Config, Receive, Scope, Send
from asgi_h3 import H3Limits

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from h3_peer import H3Peer, certificate_files

H3_EXCESSIVE_LOAD = 0x107


async def ok(send: Send, body: bytes = b"ok") -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def test_concurrent_streams_are_capped_and_the_rest_wait(tmp_path: Path) -> None:
    running = 0
    most = 0
    release = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await release.wait()
        running -= 1
        await ok(send)

    async def main() -> None:
        peer = H3Peer(app, certificate_files(tmp_path), limits=H3Limits(max_concurrent_streams=3))
        await peer.connect()
        ids = [peer.request(b"/%d" % i) for i in range(10)]
        await peer.until(lambda: running == 3)
        await peer.settle()
        assert running == 3  # QUIC's stream limit holds the other seven at the client
        release.set()
        results = [await peer.response(stream_id) for stream_id in ids]
        assert all(r.status == 200 for r in results)
        assert peer.terminated is None

    asyncio.run(main())
    assert most == 3


def test_header_section_over_the_limit_is_431_and_the_connection_goes_on(tmp_path: Path) -> None:
    calls: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        calls.append(scope["path"])
        await ok(send)

    async def main() -> None:
        config = Config(limit_request_field_size=0)  # only the section limit applies here
        peer = H3Peer(
            app, certificate_files(tmp_path), config=config, limits=H3Limits(max_field_section_size=4096)
        )
        await peer.connect()
        big = peer.request(b"/big", headers=[(b"x-big", b"a" * 5000)])
        assert (await peer.response(big)).status == 431
        many = peer.request(b"/many", headers=[(b"x-%d" % i, b"v") for i in range(150)])
        assert (await peer.response(many)).status == 431  # Config.limit_request_fields (100)
        assert (await peer.response(peer.request(b"/small"))).status == 200

    asyncio.run(main())
    assert calls == ["/small"]


def test_reset_flood_closes_the_connection_with_bounded_state(tmp_path: Path) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await ok(send)

    async def main() -> None:
        peer = H3Peer(app, certificate_files(tmp_path), limits=H3Limits(max_resets=50, reset_window=60.0))
        await peer.connect()
        protocol = peer.protocol
        for _ in range(200):
            stream_id = peer.request(b"/", method=b"POST", body=b"x", end=False)
            peer.reset(stream_id)
            await peer.settle(quiet_rounds=1)
            assert len(protocol.streams) <= 1
            if peer.terminated is not None:
                break
        await peer.until(lambda: peer.terminated is not None)
        assert peer.terminated is not None
        assert peer.terminated.error_code == H3_EXCESSIVE_LOAD
        assert protocol not in peer.context.connections
        assert protocol.streams == {}

    asyncio.run(main())


def test_apps_ignoring_reset_streams_do_not_pile_up(tmp_path: Path) -> None:
    """Rapid Reset: QUIC frees a reset stream's slot at once, but its app runs on. Apps run at most
    `max_concurrent_streams` at once; a reset stream still waiting for a slot is forgotten with nothing kept."""
    started = 0
    forever = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal started
        started += 1
        await forever.wait()

    async def main() -> None:
        limits = H3Limits(max_concurrent_streams=4, max_resets=10_000)
        config = Config(disconnect_grace_period=None)  # reset streams' apps are never cancelled
        peer = H3Peer(app, certificate_files(tmp_path), config=config, limits=limits)
        await peer.connect()
        protocol = peer.protocol
        for _ in range(100):
            stream_id = peer.request(b"/", method=b"POST", body=b"x", end=False)
            await peer.settle(quiet_rounds=1)
            peer.reset(stream_id)
            await peer.settle(quiet_rounds=1)
        assert peer.terminated is None
        assert protocol.streams == {}
        assert protocol._admission.running == 4
        assert not protocol._admission._waiting
        forever.set()

    asyncio.run(main())
    assert started == 4  # the cap on running apps held


def test_a_stream_whose_client_acknowledges_nothing_is_reset(tmp_path: Path) -> None:
    outcome: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/next":
            await ok(send)
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            while True:
                await send({"type": "http.response.body", "body": b"z" * 65536, "more_body": True})
        except ClientDisconnected:
            outcome.append("disconnected")

    async def main() -> None:
        limits = H3Limits(send_timeout=0.2)
        peer = H3Peer(app, certificate_files(tmp_path), limits=limits)
        await peer.connect()
        stream_id = peer.request(b"/download")
        peer.hold_server = True  # the client keeps the connection but acknowledges nothing from here
        await peer.until(lambda: outcome == ["disconnected"], timeout=5)
        peer.hold_server = False
        await peer.until(lambda: peer.results[stream_id].reset is not None)
        assert peer.results[stream_id].reset == 0x10C  # H3_REQUEST_CANCELLED
        assert (await peer.response(peer.request(b"/next"))).status == 200  # the connection goes on

    asyncio.run(main())


def test_requests_refused_for_the_peers_errors_count_as_resets(tmp_path: Path) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await ok(send)

    async def main() -> None:
        peer = H3Peer(app, certificate_files(tmp_path), limits=H3Limits(max_resets=20, reset_window=60.0))
        await peer.connect()
        for _ in range(30):
            peer.request(b"/", headers=[(b"x-big", b"a" * 10_000)])  # 431 each (limit_request_field_size)
            await peer.settle(quiet_rounds=1)
            if peer.terminated is not None:
                break
        await peer.until(lambda: peer.terminated is not None)
        assert peer.terminated is not None
        assert peer.terminated.error_code == H3_EXCESSIVE_LOAD

    asyncio.run(main())


def test_limits_are_checked() -> None:
    with pytest.raises(ValueError, match=r"H3Limits\.max_resets must be at least 1"):
        H3Limits(max_resets=0)
    with pytest.raises(ValueError, match=r"H3Limits\.send_timeout must be a positive number of seconds"):
        H3Limits(send_timeout=0)
