"""Garbage never breaks the server: random datagrams at the endpoint, and random bytes on a request stream of
an established connection, only ever end in an HTTP/3 or QUIC error for that peer (aioquic's client as the
peer, paired in memory); the server goes on serving."""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from asgi_core import Receive, Scope, Send
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from h3_peer import H3Peer, certificate_files

FILES = certificate_files(Path(tempfile.mkdtemp(prefix="h3-fuzz-")))


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(min_size=0, max_size=1500), min_size=1, max_size=5))
def test_random_datagrams_at_the_endpoint(datagrams: list[bytes]) -> None:
    async def main() -> None:
        peer = H3Peer(app, FILES)
        for data in datagrams:
            peer.server.datagram_received(data, ("127.0.0.1", 40000))
        await peer.connect()
        assert bytes((await peer.response(peer.request(b"/"))).body) == b"ok"

    asyncio.run(main())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(min_size=1, max_size=300), st.booleans())
def test_random_bytes_on_a_request_stream(garbage: bytes, end: bool) -> None:
    async def main() -> None:
        peer = H3Peer(app, FILES)
        await peer.connect()
        stream_id = peer.quic.get_next_available_stream_id()
        peer.quic.send_stream_data(stream_id, garbage, end_stream=end)
        await peer.settle()
        result = peer.results[peer.request(b"/")]
        # Either the garbage was a harmless start (or a stream error) and the next request is served, or the
        # server closed the connection with an error code (the client hears of it at once, and reports it
        # as terminated after its closing period).
        await peer.until(lambda: result.ended or closed_by_server(peer))
        if result.ended:
            assert bytes(result.body) == b"ok"
        else:
            close = peer.quic._close_event
            assert close is not None
            assert close.error_code != 0

    asyncio.run(main())


def closed_by_server(peer: H3Peer) -> bool:
    return peer.quic._close_event is not None
