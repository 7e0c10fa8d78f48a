"""Requests and responses over the uWSGI protocol on real loopback sockets: a raw uWSGI client (packets as
nginx builds them) against `asgi_core.serve` running this package's plugin."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import sys
from http import HTTPStatus
from pathlib import Path

import pytest
from asgi_core import Config, Receive, Scope, Send
from asgi_uwsgi import encode_packet

# The shared client module sits beside this file; pytest imports tests by path (--import-mode=importlib)
# without putting their directory on sys.path, and a second conftest.py would clash under mypy.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from uwsgi_client import (
    LOG,
    Response,
    connect,
    echo_app,
    exchange,
    packet,
    parse_response,
    read_body,
    read_to_close,
    run,
)

# ---- requests and responses --------------------------------------------------------------------------


def test_get_maps_nginx_variables_onto_the_scope() -> None:
    data = packet(
        "GET",
        "/caf%C3%A9/a%2Fb?q=a%20b&x=1&x=2",
        headers=[("X-Dup", "one"), ("X-Dup", "two"), ("Cookie", "a=1")],
    )

    async def scenario(port: int) -> Response:
        return await exchange(port, data)

    response = run(echo_app, scenario)
    assert response.status == 200
    info = response.json()
    assert info["method"] == "GET"
    assert info["path"] == "/café/a/b"
    assert info["raw_path"] == "/caf%C3%A9/a%2Fb"
    assert info["query_string"] == "q=a%20b&x=1&x=2"
    assert info["headers"] == [["host", "example.org"], ["x-dup", "one"], ["x-dup", "two"], ["cookie", "a=1"]]
    assert info["client"] == ["192.0.2.7", 40123]
    assert info["server"] == ["example.org", 80]
    assert info["scheme"] == "http"
    assert info["root_path"] == ""
    assert info["http_version"] == "1.1"
    assert info["extensions"] == ["http.response.pathsend", "uwsgi"]
    assert info["size"] == 0
    assert response.header(b"content-length") == str(len(response.body)).encode()
    assert response.header(b"content-type") == b"application/json"
    assert response.header(b"server") == b"gunicorn-asgi"
    assert response.header(b"date") is not None


def test_status_line_and_headers_are_what_nginx_parses() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 418, "headers": [(b"X-Custom", b"v 1")]})
        await send({"type": "http.response.body", "body": b"tea"})

    async def scenario(port: int) -> bytes:
        reader, writer = await connect(port)
        writer.write(packet())
        raw = await read_to_close(reader)
        writer.close()
        return raw

    raw = run(app, scenario)
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 418 {HTTPStatus(418).phrase}\r\n".encode())
    assert b"\r\nX-Custom: v 1\r\n" in head + b"\r\n"
    assert b"\r\ncontent-length: 3" in head
    assert body == b"tea"


@pytest.mark.parametrize("size", [0, 1, 65536, 65537, 3 * 1024 * 1024 + 5])
def test_request_bodies_arrive_whole(size: int) -> None:
    body = bytes(range(256)) * (size // 256) + b"x" * (size % 256)

    async def scenario(port: int) -> Response:
        return await exchange(port, packet("POST", "/upload", body=body))

    info = run(echo_app, scenario).json()
    assert info["size"] == size
    assert info["sha256"] == hashlib.sha256(body).hexdigest()
    assert ["content-length", str(size)] in info["headers"] or size == 0


def test_body_sent_in_pieces_is_streamed_to_the_app() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        first = await receive()
        assert first["more_body"] is True
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"got:" + first["body"], "more_body": True})
        rest, _ = await read_body(receive)
        await send({"type": "http.response.body", "body": b"|rest:" + rest})

    async def scenario(port: int) -> bytes:
        reader, writer = await connect(port)
        full = packet("PUT", "/", body=b"AAAA" + b"BBBB")
        writer.write(full[:-4])  # all but the last 4 body bytes
        head = await asyncio.wait_for(reader.readuntil(b"got:AAAA"), 5)  # the app answered before the end
        writer.write(full[-4:])
        raw = head + await read_to_close(reader)
        writer.close()
        return raw

    response = parse_response(run(app, scenario))
    assert response.body == b"got:AAAA|rest:BBBB"
    assert response.header(b"content-length") is None
    assert response.header(b"transfer-encoding") is None


def test_streamed_response_without_length_is_raw_bytes_ended_by_close() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"transfer-encoding", b"chunked")]})
        for part in (b"one ", b"two ", b"three"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
            await asyncio.sleep(0.01)
        await send({"type": "http.response.body", "body": b""})

    async def scenario(port: int) -> Response:
        return await exchange(port, packet())

    response = run(app, scenario)
    assert response.body == b"one two three"  # no chunk framing on this wire
    assert response.header(b"transfer-encoding") is None  # the app's own header would lie to nginx
    assert response.header(b"content-length") is None


def test_head_response_has_length_and_no_body() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"5")]})
        await send({"type": "http.response.body", "body": b"hello"})

    async def scenario(port: int) -> Response:
        return await exchange(port, packet("HEAD"))

    response = run(app, scenario)
    assert response.header(b"content-length") == b"5"
    assert response.body == b""


def test_pathsend_sends_the_file(tmp_path: Path) -> None:
    content = bytes(range(256)) * 4096 + b"tail"
    path = tmp_path / "data.bin"
    path.write_bytes(content)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        assert "http.response.pathsend" in scope["extensions"]
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.pathsend", "path": str(path)})

    async def scenario(port: int) -> Response:
        return await exchange(port, packet())

    response = run(app, scenario)
    assert response.header(b"content-length") == str(len(content)).encode()
    assert response.body == content


def test_bytes_after_the_request_are_ignored() -> None:
    async def scenario(port: int) -> Response:
        return await exchange(port, packet("POST", body=b"abc") + packet("GET", "/second") + b"garbage")

    info = run(echo_app, scenario).json()
    assert info["path"] == "/"
    assert info["size"] == 3


# ---- errors ------------------------------------------------------------------------------------------


def test_app_error_before_the_response_is_a_500() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("boom")

    async def scenario(port: int) -> Response:
        return await exchange(port, packet())

    response = run(app, scenario)
    assert response.status == 500
    assert response.body == b"Internal Server Error"


def test_app_error_mid_response_resets_the_connection() -> None:
    """A cut response must look like an error to nginx, not like a short body ended by a clean close."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        await asyncio.sleep(0.05)
        raise RuntimeError("boom")

    async def scenario(port: int) -> tuple[bytes, BaseException | None]:
        reader, writer = await connect(port)
        writer.write(packet())
        received = b""
        try:
            while chunk := await asyncio.wait_for(reader.read(65536), 5):
                received += chunk
        except ConnectionResetError as exc:
            return received, exc
        finally:
            writer.close()
        return received, None

    received, error = run(app, scenario)
    assert received.endswith(b"partial")
    assert isinstance(error, ConnectionResetError)


def test_websocket_handshake_gets_a_clear_refusal() -> None:
    called = False

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal called
        called = True

    data = packet(
        "GET",
        "/ws",
        headers=[("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Version", "13")],
    )

    async def scenario(port: int) -> Response:
        return await exchange(port, data)

    response = run(app, scenario)
    assert response.status == 501
    assert b"WebSocket is not available over the uWSGI protocol" in response.body
    assert b"proxy_pass" in response.body
    assert not called


@pytest.mark.parametrize(
    ("variables", "status", "reason"),
    [
        ([(b"REQUEST_URI", b"/")], 400, b"no valid REQUEST_METHOD"),
        ([(b"REQUEST_METHOD", b"G E T"), (b"REQUEST_URI", b"/")], 400, b"no valid REQUEST_METHOD"),
        ([(b"REQUEST_METHOD", b"GET"), (b"REQUEST_URI", b"no-slash")], 400, b"request target"),
        ([(b"REQUEST_METHOD", b"GET"), (b"REQUEST_URI", b"/a b")], 400, b"request target"),
        ([(b"REQUEST_METHOD", b"GET"), (b"HTTP_X", b"a\r\nb")], 400, b"not a valid header field"),
        ([(b"REQUEST_METHOD", b"GET"), (b"REQUEST_URI", b"/" + b"a" * 5000)], 414, b"limit_request_line"),
        ([(b"REQUEST_METHOD", b"GET"), *[(b"HTTP_X_%d" % i, b"v") for i in range(101)]], 431, b"fields"),
        ([(b"REQUEST_METHOD", b"GET"), (b"HTTP_BIG", b"v" * 9000)], 431, b"limit_request_field_size"),
    ],
)
def test_requests_that_cannot_be_served_get_a_plain_error(
    variables: list[tuple[bytes, bytes]], status: int, reason: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario(port: int) -> Response:
        return await exchange(port, encode_packet(variables))

    with caplog.at_level(logging.INFO, LOG):
        response = run(echo_app, scenario)
    assert response.status == status
    assert reason in response.body
    assert response.header(b"content-length") == str(len(response.body)).encode()
    assert f"answered {status}" in caplog.text


def test_oversized_body_gets_413_and_the_unread_body_is_drained_not_reset() -> None:
    body = b"z" * (2 * 1024 * 1024)

    async def scenario(port: int) -> Response:
        return await exchange(port, packet("POST", body=body))

    config = Config(lifespan="off", max_request_body_size=1000)
    response = run(echo_app, scenario, config=config)
    assert response.status == 413


def test_early_response_to_a_large_upload_reaches_the_client_intact() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 202})
        await send({"type": "http.response.body", "body": b"accepted without reading"})

    body = b"u" * (4 * 1024 * 1024)

    async def scenario(port: int) -> Response:
        return await exchange(port, packet("POST", body=body))

    response = run(app, scenario)
    assert response.status == 202
    assert response.body == b"accepted without reading"
