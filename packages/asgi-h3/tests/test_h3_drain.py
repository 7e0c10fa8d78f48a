"""The two-step drain on HTTP/3 (RFC 9114 section 5.2), with aioquic's client as the peer (paired in memory)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from asgi_core import Config, Message, Receive, Scope, Send

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from h3_peer import H3Peer, certificate_files

H3_NO_ERROR = 0x100
H3_REQUEST_REJECTED = 0x10B


def test_shutdown_sends_goaway_finishes_streams_in_flight_and_closes(tmp_path: Path) -> None:
    release = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/slow":
            await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"x" * 100_000})

    async def main() -> None:
        peer = H3Peer(app, certificate_files(tmp_path))
        await peer.connect()
        slow = peer.request(b"/slow")
        await peer.settle()
        protocol = peer.protocol
        assert protocol in peer.context.connections
        peer.context.drain_connections()
        await peer.settle()
        assert peer.goaway_ids() == [slow + 4]  # the first request stream not served
        late = peer.request(b"/late")
        assert (await peer.response(late)).reset == H3_REQUEST_REJECTED
        assert peer.terminated is None
        release.set()
        result = await peer.response(slow)
        assert result.status == 200
        assert len(result.body) == 100_000
        await peer.until(lambda: peer.terminated is not None)
        assert peer.terminated is not None
        assert peer.terminated.error_code == H3_NO_ERROR
        assert protocol not in peer.context.connections

    asyncio.run(main())


def test_idle_connection_closes_after_goaway(tmp_path: Path) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def main() -> None:
        peer = H3Peer(app, certificate_files(tmp_path), config=Config(drain_idle_grace=0.05))
        await peer.connect()
        assert (await peer.response(peer.request(b"/"))).status == 200
        peer.context.drain_connections()
        await peer.until(lambda: peer.terminated is not None)
        assert peer.goaway_ids() == [4]
        assert not peer.context.connections

    asyncio.run(main())


def test_going_away_tells_the_app_and_closes(tmp_path: Path) -> None:
    seen: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(await receive())
        seen.append(await receive())

    async def main() -> None:
        peer = H3Peer(app, certificate_files(tmp_path))
        await peer.connect()
        peer.request(b"/upload", method=b"POST", body=b"part", end=False)
        await peer.until(lambda: len(seen) == 1)
        peer.context.drain_connections()
        await peer.settle()
        assert len(seen) == 1  # step 1 leaves the request alone
        peer.context.close_connections()
        await peer.until(lambda: len(seen) == 2 and peer.terminated is not None)
        assert not peer.context.connections

    asyncio.run(main())
    assert seen[1] == {"type": "http.disconnect"}


def test_connection_made_while_draining_starts_in_step_one(tmp_path: Path) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("no request is served")

    async def main() -> None:
        peer = H3Peer(app, certificate_files(tmp_path), config=Config(drain_idle_grace=0.05))
        peer.context.draining = True
        await peer.connect()
        await peer.until(lambda: peer.terminated is not None)
        assert peer.goaway_ids() == [0]

    asyncio.run(main())
