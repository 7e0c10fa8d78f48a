"""Requests and responses on HTTP/2 streams, with h2's client as the peer: what an app sees in its scope and
body, what the client gets back (heads, bodies, trailers, 1xx, bodyless responses), and how failures on either
side reach the other."""

from __future__ import annotations

import asyncio
import hashlib
import sys
from pathlib import Path
from typing import Any

from asgi_core import AccessRecord, ClientDisconnected, Config, Message, Receive, Scope, Send
from h2 import events as ev
from h2.errors import ErrorCodes

# The shared peer (h2_peer.py) sits beside this file; pytest's importlib mode does not put it on sys.path.
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from h2_peer import H2Peer, read_body, run


async def respond(send: Send, status: int = 200, body: bytes = b"", headers: list[Any] | None = None) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers or []})
    await send({"type": "http.response.body", "body": body})


def test_get_builds_the_scope_and_answers() -> None:
    scopes: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scopes.append(scope)
        await respond(send, body=b"hello", headers=[(b"content-type", b"text/plain")])

    async def main() -> None:
        peer = H2Peer(app)
        stream = peer.request(
            "GET",
            "/a%20b/c?x=1&y=2",
            headers=[("cookie", "a=1"), ("accept", "*/*"), ("cookie", "b=2"), ("x-forwarded-for", "10.0.0.9")],
        )
        result = await peer.response(stream)
        assert result.status == 200
        assert bytes(result.data) == b"hello"
        assert result.header(b"content-type") == b"text/plain"
        assert result.header(b"content-length") == b"5"
        assert result.header(b"server") == b"gunicorn-asgi"
        assert result.header(b"date") is not None

    run(main())
    scope = scopes[0]
    assert scope["http_version"] == "2"
    assert scope["method"] == "GET"
    assert scope["path"] == "/a b/c"
    assert scope["raw_path"] == b"/a%20b/c"
    assert scope["query_string"] == b"x=1&y=2"
    assert scope["scheme"] == "http"  # the connection's own scheme (the in-memory transport has no TLS)
    headers = scope["headers"]
    assert headers[0] == (b"host", b"example.org")  # from :authority, for apps that read Host
    assert (b"cookie", b"a=1; b=2") in headers  # RFC 9113 8.2.3: split cookies joined again
    assert [name for name, _ in headers].count(b"cookie") == 1
    assert not any(name.startswith(b":") for name, _ in headers)
    assert scope["client"] == ("10.0.0.9", 0)  # 127.0.0.1 is a trusted proxy by default
    assert "http.response.trailers" in scope["extensions"]


def test_a_fragment_in_the_path_reaches_neither_path_nor_query() -> None:
    """A client should not send one (RFC 9113 8.3.1 carries path and query only); one that does is read as
    HTTP/1.1 reads its target: the fragment is dropped (RFC 3986 section 3.5)."""
    scopes: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scopes.append(scope)
        await respond(send)

    async def main() -> None:
        peer = H2Peer(app)
        assert (await peer.response(peer.request("GET", "/forums/1/topics/2375?page=1#posts-17408"))).status == 200

    run(main())
    assert (scopes[0]["path"], scopes[0]["raw_path"], scopes[0]["query_string"]) == (
        "/forums/1/topics/2375",
        b"/forums/1/topics/2375",
        b"page=1",
    )


def test_interleaved_streams_keep_their_own_bodies() -> None:
    async def echo(scope: Scope, receive: Receive, send: Send) -> None:
        body = await read_body(receive)
        await respond(send, body=scope["path"].encode() + b":" + body)

    async def main() -> None:
        peer = H2Peer(echo)
        ids = [peer.request("POST", f"/s{i}", body=None, end=False) for i in range(3)]
        for round_number in range(3):
            for i, stream_id in enumerate(ids):
                peer.client.send_data(stream_id, f"{i}.{round_number};".encode())
                peer.flush()
            await peer.settle(2)
        for stream_id in reversed(ids):
            peer.client.end_stream(stream_id)
        peer.flush()
        for i, stream_id in enumerate(ids):
            result = await peer.response(stream_id)
            assert bytes(result.data) == f"/s{i}:{i}.0;{i}.1;{i}.2;".encode()

    run(main())


def test_streaming_response_with_trailers() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [], "trailers": True})
        for part in (b"one ", b"two ", b"three"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        digest = hashlib.md5(b"one two three").hexdigest().encode()
        await send({"type": "http.response.trailers", "headers": [(b"Content-MD5", digest), (b"te", b"x")]})

    async def main() -> None:
        peer = H2Peer(app)
        result = await peer.response(peer.request(headers=[("te", "trailers")]))
        assert bytes(result.data) == b"one two three"
        assert result.header(b"content-length") is None  # a streamed body has no declared length
        assert result.trailers == [(b"content-md5", hashlib.md5(b"one two three").hexdigest().encode())]

    run(main())


def test_head_204_205_and_304_end_on_the_headers_frame() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        status = int(scope["path"][1:])
        await respond(send, status, b"ignored body" if status != 304 else b"")

    async def main() -> None:
        peer = H2Peer(app)
        head = peer.request("HEAD", "/200")
        no_content = peer.request("GET", "/204")
        reset_content = peer.request("GET", "/205")
        not_modified = peer.request("GET", "/304")
        for stream_id, status in ((head, 200), (no_content, 204), (reset_content, 205), (not_modified, 304)):
            result = await peer.response(stream_id)
            assert result.status == status
            assert result.data == b""
        assert peer.streams[head].header(b"content-length") == b"12"  # HEAD tells the length it would send
        assert peer.streams[reset_content].header(b"content-length") == b"0"  # RFC 9110 15.3.6
        data_frames = [e for e in peer.events if isinstance(e, ev.DataReceived)]
        assert data_frames == []  # END_STREAM rode on HEADERS: not even an empty DATA frame

    run(main())


def test_early_hints_and_100_continue_come_first() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.early_hint", "links": [b"</style.css>; rel=preload; as=style"]})
        body = await read_body(receive)
        await respond(send, body=body)

    async def main() -> None:
        peer = H2Peer(app)
        stream = peer.request("POST", "/", headers=[("expect", "100-continue")], end=False)
        await peer.until(lambda: len(peer.streams[stream].informational) == 2)
        early, cont = peer.streams[stream].informational
        assert early == [(b":status", b"103"), (b"link", b"</style.css>; rel=preload; as=style")]
        assert cont == [(b":status", b"100")]
        peer.client.send_data(stream, b"payload", end_stream=True)
        peer.flush()
        result = await peer.response(stream)
        assert (result.status, bytes(result.data)) == (200, b"payload")

    run(main())


def test_connection_specific_headers_are_dropped_and_names_lowered() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [
            (b"Connection", b"keep-alive"),
            (b"Keep-Alive", b"timeout=5"),
            (b"Transfer-Encoding", b"chunked"),
            (b"Upgrade", b"h2c"),
            (b"X-Custom", b"  padded  "),
        ]
        await respond(send, body=b"ok", headers=headers)

    async def main() -> None:
        peer = H2Peer(app)
        result = await peer.response(peer.request())
        names = [name for name, _ in result.headers or []]
        for forbidden in (b"connection", b"keep-alive", b"transfer-encoding", b"upgrade"):
            assert forbidden not in names
        assert result.header(b"x-custom") == b"padded"

    run(main())


def test_app_errors_give_500_or_reset() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/before":
            raise RuntimeError("boom")
        if scope["path"] == "/bad-header":
            await respond(send, headers=[(b"x-bad", b"line\nbreak")])
            return
        if scope["path"] == "/control-character":  # RFC 9110 5.5: never in a field value, either direction
            await respond(send, headers=[(b"x-bad", b"bell\x07")])
            return
        if scope["path"].startswith("/length-"):
            declared = b"10" if scope["path"] == "/length-short" else b"2"
            await respond(send, body=b"12345", headers=[(b"content-length", declared)])
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise RuntimeError("boom after start")

    async def main() -> None:
        peer = H2Peer(app)
        before = await peer.response(peer.request("GET", "/before"))
        assert before.status == 500
        bad = await peer.response(peer.request("GET", "/bad-header"))
        assert bad.status == 500
        control = await peer.response(peer.request("GET", "/control-character"))
        assert (control.status, control.header(b"x-bad")) == (500, None)
        after = await peer.response(peer.request("GET", "/after"))
        assert after.status == 200
        assert after.reset == ErrorCodes.INTERNAL_ERROR
        # A body that does not match its declared length is malformed (RFC 9113 8.1.1): the stream is reset.
        for path in ("/length-short", "/length-long"):
            assert (await peer.response(peer.request("GET", path))).reset == ErrorCodes.INTERNAL_ERROR
        assert not peer.transport.closed  # one failed stream does not take the connection down
        assert peer.goaway is None

    run(main())


def test_request_limits_answer_without_the_app() -> None:
    calls: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        calls.append(scope["path"])
        await respond(send, body=b"ok")

    async def main() -> None:
        config = Config(limit_request_fields=5, limit_request_line=100, max_request_body_size=10)
        peer = H2Peer(app, config=config)
        many = peer.request(headers=[(f"x-h{i}", "v") for i in range(6)])
        long_path = peer.request("GET", "/" + "a" * 200)
        big_body = peer.request("POST", "/upload", headers=[("content-length", "11")], body=b"x" * 11)
        assert (await peer.response(many)).status == 431
        assert (await peer.response(long_path)).status == 414
        assert (await peer.response(big_body)).status == 413
        ok = await peer.response(peer.request("GET", "/fine"))
        assert ok.status == 200
        assert calls == ["/fine"]

    run(main())


def test_resets_at_every_stage_reach_the_app_and_spare_the_connection() -> None:
    seen: dict[str, str] = {}
    release = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        try:
            if path == "/before-body":
                seen[path] = (await receive())["type"]  # blocks: the client sent headers only
            elif path == "/mid-body":
                first = await receive()
                assert first["body"] == b"part"
                seen[path] = (await receive())["type"]
            elif path == "/before-head":
                await release.wait()
                await respond(send, body=b"too late")
            elif path == "/mid-response":
                await send({"type": "http.response.start", "status": 200, "headers": []})
                while True:
                    await send({"type": "http.response.body", "body": b"x" * 1000, "more_body": True})
                    await asyncio.sleep(0.001)
            else:
                await respond(send, body=b"done")
        except ClientDisconnected:
            seen[path] = "send raised ClientDisconnected"

    async def main() -> None:
        peer = H2Peer(app)
        before_body = peer.request("POST", "/before-body", end=False)
        mid_body = peer.request("POST", "/mid-body", body=b"part", end=False)
        before_head = peer.request("GET", "/before-head")
        mid_response = peer.request("GET", "/mid-response")
        await peer.until(lambda: len(peer.streams[mid_response].data) > 3000)
        for stream_id in (before_body, mid_body, before_head, mid_response):
            peer.client.reset_stream(stream_id, ErrorCodes.CANCEL)
        peer.flush()
        await peer.settle()
        release.set()
        await peer.until(lambda: len(seen) == 4)
        assert seen == {
            "/before-body": "http.disconnect",
            "/mid-body": "http.disconnect",
            "/before-head": "send raised ClientDisconnected",
            "/mid-response": "send raised ClientDisconnected",
        }
        assert peer.protocol.streams == {}
        later = await peer.response(peer.request("GET", "/fine"))
        assert bytes(later.data) == b"done"
        assert peer.goaway is None

    run(main())


def test_access_log_records_http2() -> None:
    records: list[AccessRecord] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await respond(send, 201, b"created")

    async def main() -> None:
        peer = H2Peer(app)
        peer.context.access_log = records.append
        await peer.response(peer.request("PUT", "/thing?v=1"))

    run(main())
    (record,) = records
    assert (record.method, record.path, record.http_version, record.status, record.response_bytes) == (
        "PUT",
        "/thing",
        "2",
        201,
        7,
    )


def test_pathsend_streams_a_file(tmp_path: Any) -> None:
    path = tmp_path / "file.bin"
    content = bytes(range(256)) * 1000
    path.write_bytes(content)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        message: Message = {"type": "http.response.start", "status": 200, "headers": []}
        await send(message)
        await send({"type": "http.response.pathsend", "path": str(path)})

    async def main() -> None:
        peer = H2Peer(app)
        result = await peer.response(peer.request())
        assert bytes(result.data) == content
        assert result.header(b"content-length") == str(len(content)).encode()

    run(main())


def test_a_content_length_that_is_not_plain_digits_is_a_500() -> None:
    """`int()` alone read "+5", " 5", "5_0" and "-1" as lengths and sent them on: the value is checked by asgi-core's
    one Content-Length rule (ASCII digits, or a list of one repeated value), as on HTTP/1.1 and uWSGI."""
    values = [b"+5", b"5_0", b"-1", b"5, 6", b"0x5"]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        declared = values[int(scope["path"].strip("/"))]
        await respond(send, body=b"12345", headers=[(b"content-length", declared)])

    async def main() -> None:
        peer = H2Peer(app)
        for index in range(len(values)):
            result = await peer.response(peer.request("GET", f"/{index}"))
            assert (result.status, result.header(b"content-length")) == (500, b"21"), values[index]
        repeated = [b"5, 5"]
        values[:] = repeated
        result = await peer.response(peer.request("GET", "/0"))
        assert (result.status, bytes(result.data)) == (200, b"12345")

    run(main())
