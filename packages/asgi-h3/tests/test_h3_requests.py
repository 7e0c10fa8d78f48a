"""Requests and responses on HTTP/3 streams, with aioquic's client as the peer (paired in memory): what an app
sees in its scope and body, what the client gets back, and how failures on one stream spare the others."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest
from asgi_core import Config, Message, Receive, Scope, Send
from asgi_h3 import H3Limits

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from h3_peer import H3Peer, certificate_files


async def respond(send: Send, status: int = 200, body: bytes = b"", headers: list[Any] | None = None) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers or []})
    await send({"type": "http.response.body", "body": body})


async def read_body(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += bytes(message.get("body", b""))
        if not message.get("more_body"):
            return body


def test_get_builds_the_scope_and_answers(tmp_path: Path) -> None:
    scopes: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scopes.append(scope)
        await respond(send, body=b"hello", headers=[(b"content-type", b"text/plain")])

    async def main() -> None:
        peer = H3Peer(app, certificate_files(tmp_path))
        await peer.connect()
        stream_id = peer.request(b"/a%20b?x=1", headers=[(b"cookie", b"a=1"), (b"cookie", b"b=2")])
        result = await peer.response(stream_id)
        assert result.status == 200
        assert bytes(result.body) == b"hello"
        assert result.headers[b"content-type"] == b"text/plain"
        assert result.headers[b"content-length"] == b"5"

    asyncio.run(main())
    (scope,) = scopes
    assert scope["http_version"] == "3"
    assert scope["scheme"] == "https"
    assert scope["method"] == "GET"
    assert scope["path"] == "/a b"
    assert scope["raw_path"] == b"/a%20b"
    assert scope["query_string"] == b"x=1"
    assert scope["client"] == ("127.0.0.1", 50000)
    assert (b"host", b"localhost") in scope["headers"]
    assert (b"cookie", b"a=1; b=2") in scope["headers"]


def test_post_with_a_large_body_reaches_the_app_whole(tmp_path: Path) -> None:
    body = bytes(range(256)) * 8 * 1024  # 2 MiB: more than the initial QUIC windows
    received: list[bytes] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        data = await read_body(receive)
        received.append(data)
        await respond(send, body=str(len(data)).encode())

    async def main() -> None:
        peer = H3Peer(app, certificate_files(tmp_path))
        await peer.connect()
        stream_id = peer.request(b"/upload", method=b"POST", body=body)
        result = await peer.response(stream_id)
        assert bytes(result.body) == str(len(body)).encode()

    asyncio.run(main())
    assert received == [body]


def test_streamed_response_arrives_in_order_with_trailers(tmp_path: Path) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [], "trailers": True})
        for i in range(50):
            await send({"type": "http.response.body", "body": b"%03d," % i * 1000, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        await send({"type": "http.response.trailers", "headers": [(b"x-checksum", b"abc")]})

    async def main() -> None:
        peer = H3Peer(app, certificate_files(tmp_path))
        await peer.connect()
        stream_id = peer.request(b"/stream", headers=[(b"te", b"trailers")])
        result = await peer.response(stream_id)
        assert result.status == 200
        assert bytes(result.body) == b"".join(b"%03d," % i * 1000 for i in range(50))
        assert result.heads[-1] == [(b"x-checksum", b"abc")]

    asyncio.run(main())


def test_many_concurrent_streams_on_one_connection(tmp_path: Path) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await asyncio.sleep(0.01)
        await respond(send, body=scope["path"].encode())

    async def main() -> None:
        peer = H3Peer(app, certificate_files(tmp_path))
        await peer.connect()
        ids = [peer.request(b"/%d" % i) for i in range(100)]
        results = [await peer.response(stream_id) for stream_id in ids]
        assert [bytes(r.body) for r in results] == [b"/%d" % i for i in range(100)]
        assert all(r.status == 200 for r in results)

    asyncio.run(main())


def test_requests_arriving_out_of_order_are_all_served(tmp_path: Path) -> None:
    """QUIC delivers each stream in order, but not the streams in the order they were opened."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await respond(send, body=scope["path"].encode())

    async def main() -> None:
        peer = H3Peer(app, certificate_files(tmp_path))
        await peer.connect()
        first = peer.request(b"/first")
        early = peer.take_datagrams()
        second = peer.request(b"/second")
        late = peer.take_datagrams()
        peer.deliver(late)
        peer.deliver(early)
        assert bytes((await peer.response(second)).body) == b"/second"
        assert bytes((await peer.response(first)).body) == b"/first"

    asyncio.run(main())


def test_app_error_on_one_stream_spares_the_others(tmp_path: Path) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/fail-before":
            raise RuntimeError("boom")
        if scope["path"] == "/fail-after":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"partial", "more_body": True})
            raise RuntimeError("boom")
        await respond(send, body=b"fine")

    async def main() -> None:
        peer = H3Peer(app, certificate_files(tmp_path))
        await peer.connect()
        before = peer.request(b"/fail-before")
        after = peer.request(b"/fail-after")
        good = peer.request(b"/ok")
        assert (await peer.response(before)).status == 500
        assert (await peer.response(after)).reset == 0x102  # H3_INTERNAL_ERROR: the client sees it fail
        assert bytes((await peer.response(good)).body) == b"fine"
        again = peer.request(b"/ok")
        assert bytes((await peer.response(again)).body) == b"fine"
        assert peer.terminated is None

    asyncio.run(main())


def test_client_reset_is_http_disconnect(tmp_path: Path) -> None:
    seen: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(await receive())
        seen.append(await receive())

    async def main() -> None:
        peer = H3Peer(app, certificate_files(tmp_path))
        await peer.connect()
        stream_id = peer.request(b"/upload", method=b"POST", body=b"part", end=False)
        await peer.until(lambda: len(seen) == 1)
        peer.reset(stream_id)
        await peer.until(lambda: len(seen) == 2)

    asyncio.run(main())
    assert seen == [
        {"type": "http.request", "body": b"part", "more_body": True},
        {"type": "http.disconnect"},
    ]


@pytest.mark.parametrize("status", [204, 304])
def test_bodyless_response_is_one_headers_frame(tmp_path: Path, status: int) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await respond(send, status=status)

    async def main() -> None:
        peer = H3Peer(app, certificate_files(tmp_path))
        await peer.connect()
        result = await peer.response(peer.request(b"/"))
        assert result.status == status
        assert result.body == b""
        assert len(result.heads) == 1

    asyncio.run(main())


def test_early_hints_go_out_before_the_response(tmp_path: Path) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.early_hint", "links": [b"</style.css>; rel=preload"]})
        await respond(send, body=b"ok")

    async def main() -> None:
        peer = H3Peer(app, certificate_files(tmp_path))
        await peer.connect()
        result = await peer.response(peer.request(b"/"))
        assert result.heads[0] == [(b":status", b"103"), (b"link", b"</style.css>; rel=preload")]
        assert result.status == 200

    asyncio.run(main())


def test_expect_continue_is_answered_when_the_app_reads(tmp_path: Path) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await respond(send, body=await read_body(receive))

    async def main() -> None:
        peer = H3Peer(app, certificate_files(tmp_path))
        await peer.connect()
        stream_id = peer.request(b"/", method=b"POST", headers=[(b"expect", b"100-continue")], end=False)
        result = peer.results[stream_id]
        await peer.until(lambda: bool(result.heads))
        assert result.heads == [[(b":status", b"100")]]
        peer.send_data(stream_id, b"body", end=True)
        assert bytes((await peer.response(stream_id)).body) == b"body"

    asyncio.run(main())


def test_response_before_the_whole_request_stops_the_rest(tmp_path: Path) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await respond(send, status=403, body=b"no")

    async def main() -> None:
        peer = H3Peer(app, certificate_files(tmp_path))
        await peer.connect()
        stream_id = peer.request(b"/upload", method=b"POST", body=b"start", end=False)
        result = await peer.response(stream_id)
        assert result.status == 403
        await peer.until(lambda: result.stopped is not None)
        assert result.stopped == 0x100  # STOP_SENDING H3_NO_ERROR: the client may stop sending (section 4.1)

    asyncio.run(main())


def test_body_over_max_request_body_size_is_413(tmp_path: Path) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await respond(send, body=await read_body(receive))

    async def main() -> None:
        peer = H3Peer(app, certificate_files(tmp_path), config=Config(max_request_body_size=1000))
        await peer.connect()
        big = peer.request(b"/", method=b"POST", body=b"x" * 5000)
        assert (await peer.response(big)).status == 413
        small = peer.request(b"/", method=b"POST", body=b"x" * 10)
        assert bytes((await peer.response(small)).body) == b"x" * 10

    asyncio.run(main())


def test_malformed_request_closes_the_connection_with_message_error(tmp_path: Path) -> None:
    seen: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(await receive())
        seen.append(await receive())

    async def main() -> None:
        peer = H3Peer(app, certificate_files(tmp_path))
        await peer.connect()
        protocol = peer.protocol
        peer.request(b"/upload", method=b"POST", body=b"part", end=False)
        await peer.until(lambda: len(seen) == 1)
        peer.request(b"/", headers=[(b"Upper-Case", b"x")])
        await peer.settle()
        # aioquic closed the connection for the malformed request: the server lets it go at once (the app
        # in flight sees the disconnect, the connection is no longer counted), not after the closing period.
        assert seen[1:] == [{"type": "http.disconnect"}]
        assert protocol not in peer.context.connections
        await peer.until(lambda: peer.terminated is not None)
        assert peer.terminated is not None
        assert peer.terminated.error_code == 0x10E  # H3_MESSAGE_ERROR
        await peer.until(lambda: protocol not in peer.context.connections)

    asyncio.run(main())


def test_whole_response_with_a_wrong_content_length_is_500(tmp_path: Path) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await respond(send, body=b"short", headers=[(b"content-length", b"10")])

    async def main() -> None:
        peer = H3Peer(app, certificate_files(tmp_path))
        await peer.connect()
        result = await peer.response(peer.request(b"/"))
        assert result.status == 500
        assert result.headers[b"content-length"] == str(len(result.body)).encode()

    asyncio.run(main())


def test_head_gets_the_length_without_the_body(tmp_path: Path) -> None:
    """Seen on the server side: aioquic's client refuses a HEAD response whose content-length is not 0
    (it does not know the request was HEAD), which RFC 9110 section 9.3.2 allows."""
    sent: list[tuple[int, list[tuple[bytes, bytes]], bool]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await respond(send, body=b"twelve bytes")

    async def main() -> None:
        peer = H3Peer(app, certificate_files(tmp_path))
        await peer.connect()
        protocol = peer.protocol
        send_headers, send_data = protocol.send_headers, protocol.send_data

        def spy_headers(stream_id: int, headers: list[tuple[bytes, bytes]], *, end_stream: bool) -> None:
            sent.append((stream_id, headers, end_stream))
            send_headers(stream_id, headers, end_stream=end_stream)

        def spy_data(stream_id: int, data: bytes, *, end_stream: bool) -> None:
            raise AssertionError("no DATA frame for a HEAD response")

        protocol.send_headers = spy_headers  # type: ignore[method-assign]
        protocol.send_data = spy_data  # type: ignore[method-assign]
        stream_id = peer.request(b"/", method=b"HEAD")
        await peer.until(lambda: bool(sent))
        ((sent_on, head, end_stream),) = sent
        assert sent_on == stream_id
        assert end_stream
        assert (b":status", b"200") in head
        assert (b"content-length", b"12") in head
        del send_data

    asyncio.run(main())


def test_address_validation_with_retry(tmp_path: Path) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await respond(send, body=b"validated")

    async def main() -> None:
        peer = H3Peer(app, certificate_files(tmp_path), limits=H3Limits(retry=True))
        await peer.connect()
        assert bytes((await peer.response(peer.request(b"/"))).body) == b"validated"
        assert peer.quic._retry_count == 1  # the server sent a Retry before keeping any state

    asyncio.run(main())


def test_client_closing_the_connection_is_http_disconnect_at_once(tmp_path: Path) -> None:
    seen: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(await receive())
        seen.append(await receive())

    async def main() -> None:
        peer = H3Peer(app, certificate_files(tmp_path))
        await peer.connect()
        protocol = peer.protocol
        peer.request(b"/upload", method=b"POST", body=b"part", end=False)
        await peer.until(lambda: len(seen) == 1)
        peer.quic.close(error_code=0x100)
        await peer.settle()
        assert seen[1:] == [{"type": "http.disconnect"}]
        assert protocol not in peer.context.connections

    asyncio.run(main())
