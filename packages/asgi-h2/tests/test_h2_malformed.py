"""Malformed requests (RFC 9113 sections 8.1.1, 8.2 and 8.3) are stream errors: the stream is reset with
PROTOCOL_ERROR, the app never sees the request, and the connection goes on serving its other streams.

The client is h2's own with its outbound checks turned off, so that it sends what a broken or hostile client
would; each case is followed by a good request on the same connection."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from asgi_core import ASGIApp, Receive, Scope, Send
from asgi_h2 import H2Limits
from h2.errors import ErrorCodes

# The shared peer (h2_peer.py) sits beside this file; pytest's importlib mode does not put it on sys.path.
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from h2_peer import H2Peer, read_body, run

Fields = list[tuple[bytes, bytes]]
GET = [(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"/"), (b":authority", b"example.org")]


def without(name: bytes) -> Fields:
    return [field for field in GET if field[0] != name]


MALFORMED: dict[str, Fields] = {
    "upper-case name": [*GET, (b"X-Upper", b"1")],
    "space in a name": [*GET, (b"bad name", b"1")],
    "colon inside a name": [*GET, (b"a:b", b"1")],
    "non-ASCII name": [*GET, (b"caf\xc3\xa9", b"1")],
    "empty name": [*GET, (b"", b"1")],
    "LF in a value": [*GET, (b"x-a", b"1\n2")],
    "CR in a value": [*GET, (b"x-a", b"1\r2")],
    "NUL in a value": [*GET, (b"x-a", b"1\x002")],
    # RFC 9110 section 5.5: no control character but HTAB in a field value.
    "BEL in a value": [*GET, (b"x-a", b"1\x072")],
    "DEL in a value": [*GET, (b"x-a", b"1\x7f2")],
    "ESC in a value": [*GET, (b"x-a", b"\x1b[31m")],
    "value that is one control character": [*GET, (b"x-a", b"\x01")],
    "vertical tab in a value": [*GET, (b"x-a", b"1\x0b2")],
    "BEL in :authority": [*without(b":authority"), (b":authority", b"exa\x07mple.org")],
    "value starting with a space": [*GET, (b"x-a", b" 1")],
    "value ending with a tab": [*GET, (b"x-a", b"1\t")],
    "CR in :path": [*without(b":path"), (b":path", b"/a\rb")],
    "pseudo-header after a regular field": [*without(b":path"), (b"x-a", b"1"), (b":path", b"/")],
    "repeated :path": [*GET, (b":path", b"/again")],
    "response pseudo-header": [(b":status", b"200"), *GET],
    "unknown pseudo-header": [*GET, (b":foo", b"bar")],
    "no :method": without(b":method"),
    "no :scheme": without(b":scheme"),
    "no :path": without(b":path"),
    "empty :path": [*without(b":path"), (b":path", b"")],
    "connection field": [*GET, (b"connection", b"keep-alive")],
    "transfer-encoding field": [*GET, (b"transfer-encoding", b"chunked")],
    "upgrade field": [*GET, (b"upgrade", b"websocket")],
    "te other than trailers": [*GET, (b"te", b"gzip")],
    "CONNECT with :path": [(b":method", b"CONNECT"), (b":authority", b"db:5432"), (b":path", b"/")],
    "CONNECT without :authority": [(b":method", b"CONNECT")],
    ":protocol without CONNECT": [*GET, (b":protocol", b"websocket")],
    "neither :authority nor host": without(b":authority"),
    "host differing from :authority": [*GET, (b"host", b"other.example")],
    "two host fields": [*without(b":authority"), (b"host", b"a.example"), (b"host", b"a.example")],
}


def make_app(seen: list[bytes]) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["raw_path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    return app


def lax_peer(seen: list[bytes], limits: H2Limits | None = None) -> H2Peer:
    peer = H2Peer(make_app(seen), limits=limits)
    peer.client.config.validate_outbound_headers = False
    peer.client.config.normalize_outbound_headers = False
    return peer


def send(peer: H2Peer, fields: Fields, *, end: bool = True) -> int:
    stream_id = peer.client.get_next_available_stream_id()
    peer.client.send_headers(stream_id, fields, end_stream=end)
    peer.flush()
    return stream_id


@pytest.mark.parametrize("fields", list(MALFORMED.values()), ids=list(MALFORMED))
def test_malformed_request_resets_its_stream_only(fields: Fields) -> None:
    async def main() -> None:
        seen: list[bytes] = []
        peer = lax_peer(seen)
        bad = send(peer, fields)
        await peer.settle()
        assert bad in peer.streams
        assert peer.streams[bad].reset == ErrorCodes.PROTOCOL_ERROR
        assert peer.streams[bad].headers is None
        good = send(peer, [*GET[:2], (b":path", b"/after"), GET[3]])
        result = await peer.response(good)
        assert result.status == 200
        assert seen == [b"/after"]
        assert peer.goaway is None

    run(main())


@pytest.mark.parametrize(
    "fields",
    [
        [*GET, (b"te", b"trailers")],
        [*GET, (b"te", b"Trailers")],
        [*GET, (b"x-empty", b"")],
        [*GET, (b"x-inner", b"a b\tc")],
        [*GET, (b"x-token-ish", b"1"), (b"x_underscore", b"2"), (b"x~tilde", b"3")],
        [*without(b":authority"), (b"host", b"example.org")],
        [*GET, (b"host", b"example.org")],
    ],
    ids=["te trailers", "te Trailers", "empty value", "inner whitespace", "odd names", "host only", "both agree"],
)
def test_well_formed_edge_cases_reach_the_app(fields: Fields) -> None:
    async def main() -> None:
        seen: list[bytes] = []
        peer = lax_peer(seen)
        result = await peer.response(send(peer, fields))
        assert result.status == 200
        assert seen == [b"/"]

    run(main())


@pytest.mark.parametrize(
    "trailers",
    [[(b":path", b"/sneaky")], [(b"x-checksum", b"ab\x07cd")], [(b"x-checksum", b"ab\x7f")]],
    ids=["pseudo-header", "BEL in a value", "DEL in a value"],
)
def test_malformed_trailers_reset_the_stream(trailers: Fields) -> None:
    async def main() -> None:
        seen: list[bytes] = []
        received: list[object] = []

        async def app(scope: Scope, receive: Receive, send_: Send) -> None:
            while True:
                message = await receive()
                received.append(message["type"])
                if message["type"] == "http.disconnect" or not message.get("more_body"):
                    break
            seen.append(scope["raw_path"])

        peer = H2Peer(app)
        peer.client.config.validate_outbound_headers = False
        peer.client.config.normalize_outbound_headers = False
        stream_id = send(peer, [(b":method", b"POST"), *GET[1:]], end=False)
        peer.client.send_data(stream_id, b"part")
        peer.client.send_headers(stream_id, trailers, end_stream=True)
        peer.flush()
        await peer.until(
            lambda: peer.streams.get(stream_id) is not None and peer.streams[stream_id].reset is not None
        )
        assert peer.streams[stream_id].reset == ErrorCodes.PROTOCOL_ERROR
        await peer.until(lambda: "http.disconnect" in received)
        assert peer.goaway is None

    run(main())


def test_well_formed_trailers_are_accepted_and_dropped() -> None:
    async def main() -> None:
        bodies: list[bytes] = []

        async def app(scope: Scope, receive: Receive, send_: Send) -> None:
            bodies.append(await read_body(receive))
            await send_({"type": "http.response.start", "status": 200, "headers": []})
            await send_({"type": "http.response.body", "body": b"ok"})

        peer = H2Peer(app)
        stream_id = send(peer, [(b":method", b"POST"), *GET[1:]], end=False)
        peer.client.send_data(stream_id, b"body")
        peer.client.send_headers(stream_id, [(b"x-checksum", b"abc")], end_stream=True)
        peer.flush()
        result = await peer.response(stream_id)
        assert result.status == 200
        assert bodies == [b"body"]

    run(main())


def test_a_flood_of_malformed_requests_ends_the_connection() -> None:
    async def main() -> None:
        seen: list[bytes] = []
        limits = H2Limits(max_resets=20)
        peer = lax_peer(seen, limits=limits)
        for _ in range(25):
            if peer.transport.closed:
                break
            send(peer, MALFORMED["upper-case name"])
        await peer.settle()
        assert peer.goaway is not None
        assert peer.goaway.error_code == ErrorCodes.ENHANCE_YOUR_CALM
        assert peer.goaway.additional_data == b"too many malformed requests"
        assert seen == []

    run(main())
