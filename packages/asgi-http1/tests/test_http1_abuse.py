"""Misbehaving clients over real loopback sockets, on both engines: each is answered (or cut off) at a bounded
cost, and never reaches the app with something it must not see."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from asgi_core import Config, PeerError, Receive, Scope, Send
from asgi_http1._engine import select_engine
from asgi_http1._request import Request, Signal

# The shared helpers sit beside this file; pytest imports tests by path (--import-mode=importlib) without putting
# their directory on sys.path.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from http1_wire import (
    Response,
    Server,
    closed_by_peer,
    connect,
    exchange,
    http1_engine,  # noqa: F401 - the autouse fixture that runs every test on both engines
    read_response,
    serving,
)


def ask(server: Server, raw: bytes) -> Response:
    """Send raw bytes on a new connection and read one response (without waiting to see the connection end)."""
    with connect(server) as sock:
        sock.sendall(raw)
        return read_response(sock.makefile("rb"))


class Recorder:
    """An app that records each scope and the body it read, and answers 200 with the path and query."""

    def __init__(self) -> None:
        self.scopes: list[Scope] = []
        self.bodies: list[bytes] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scopes.append(scope)
        body = bytearray()
        self.bodies.append(b"")
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            self.bodies[-1] = bytes(body)
            if not message.get("more_body"):
                break
        headers = [(b"x-path", scope["path"].encode()), (b"x-query", scope["query_string"])]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})


# ---- field values ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [b"a\x07b", b"a\x7fb", b"\x01", b"x\x1b[31m", b"a\x0bb", b"a\x0cb", b"a\x00b"])
def test_a_control_character_in_a_field_value_gets_400_before_the_app(value: bytes) -> None:
    app = Recorder()
    with serving(app) as server:
        response, closed = exchange(server, b"GET / HTTP/1.1\r\nHost: t\r\nX-Note: " + value + b"\r\n\r\n")
    assert response.status == 400
    assert closed
    assert not app.scopes


def test_a_tab_inside_a_field_value_is_kept() -> None:
    app = Recorder()
    with serving(app) as server:
        response = ask(server, b"GET / HTTP/1.1\r\nHost: t\r\nX-Note: a\tb\r\n\r\n")
    assert response.status == 200
    assert (b"x-note", b"a\tb") in app.scopes[0]["headers"]


@pytest.mark.parametrize("value", [b"a\x07b", b"a\x7fb", b"\x1b"])
def test_a_control_character_in_a_trailer_field_value_gets_400(value: bytes) -> None:
    app = Recorder()
    with serving(app) as server:
        chunked = b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n"
        response, closed = exchange(server, chunked + b"X-Sum: " + value + b"\r\n\r\n")
    assert response.status == 400
    assert closed


def test_a_tab_inside_a_trailer_field_value_is_accepted() -> None:
    app = Recorder()
    with serving(app) as server:
        chunked = b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n"
        response = ask(server, chunked + b"X-Sum: a\tb\r\n\r\n")
    assert response.status == 200
    assert app.bodies == [b"x"]


# ---- request targets ------------------------------------------------------------------------------------------


def test_a_fragment_in_the_target_reaches_neither_path_nor_query() -> None:
    app = Recorder()
    with serving(app) as server:
        response = ask(server, b"GET /forums/1/topics/2375?page=1#posts-17408 HTTP/1.1\r\nHost: t\r\n\r\n")
    assert response.status == 200
    scope = app.scopes[0]
    assert (scope["path"], scope["raw_path"], scope["query_string"]) == (
        "/forums/1/topics/2375",
        b"/forums/1/topics/2375",
        b"page=1",
    )


@pytest.mark.parametrize(
    ("target", "host"), [(b"example.com:443", b"example.com:443"), (b"[::1]:443", b"[::1]:443")]
)
def test_connect_in_authority_form_is_501_before_the_app(target: bytes, host: bytes) -> None:
    # ASGI has no tunnels: the app could only ever refuse CONNECT, so the server does, cleanly, and never a 500.
    app = Recorder()
    with serving(app) as server:
        response, closed = exchange(server, b"CONNECT " + target + b" HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
    assert response.status == 501
    assert closed
    assert not app.scopes


def test_connect_with_a_target_that_is_not_an_authority_is_400() -> None:
    app = Recorder()
    with serving(app) as server:
        response = ask(server, b"CONNECT /path HTTP/1.1\r\nHost: example.com\r\n\r\n")
    assert response.status == 400
    assert not app.scopes


def test_a_client_sending_many_host_names_is_still_checked_on_each() -> None:
    # Valid Host values are remembered (a server sees the same few again and again), a bounded number of them:
    # after hundreds of new names on one connection, a bad one is still a 400 and a known one still served.
    app = Recorder()
    with serving(app) as server, connect(server) as sock:
        stream = sock.makefile("rb")
        for index in range(300):
            sock.sendall(b"GET / HTTP/1.1\r\nHost: host-%d.example:80\r\n\r\n" % index)
            assert read_response(stream).status == 200
        assert ask(server, b"GET / HTTP/1.1\r\nHost: bad host\r\n\r\n").status == 400
        assert ask(server, b"GET / HTTP/1.1\r\nHost: host-7.example:80\r\n\r\n").status == 200
    assert len(app.scopes) == 301


# ---- chunked framing ------------------------------------------------------------------------------------------

CHUNKED_POST = b"POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"


def test_a_chunk_size_line_over_4_kib_is_refused() -> None:
    app = Recorder()
    with serving(app) as server, connect(server) as sock:
        sock.sendall(CHUNKED_POST + b"1;" + b"e" * 4200 + b"\r\nx\r\n0\r\n\r\n")
        stream = sock.makefile("rb")
        assert read_response(stream).status == 400
        assert closed_by_peer(sock, stream)
    assert app.bodies in ([], [b""])


def test_a_chunk_size_line_over_4_kib_is_refused_before_it_ends() -> None:
    # A line that never ends is not buffered on and on: it is refused once it passes the limit.
    app = Recorder()
    with serving(app) as server, connect(server) as sock:
        sock.sendall(CHUNKED_POST + b"1;" + b"e" * 5000)
        stream = sock.makefile("rb")
        assert read_response(stream).status == 400
        assert closed_by_peer(sock, stream)


def test_chunk_extensions_are_capped_per_request() -> None:
    # 1 KiB of extensions on each 1-byte chunk: refused once they add up past the cap (16 KiB), not parsed on.
    app = Recorder()
    chunks = b"".join(b"1;ext=" + b"v" * 1018 + b"\r\nx\r\n" for _ in range(32))
    with serving(app) as server, connect(server) as sock:
        sock.sendall(CHUNKED_POST + chunks)
        stream = sock.makefile("rb")
        assert read_response(stream).status == 400
        assert closed_by_peer(sock, stream)
    assert len(app.bodies[0]) <= 16


def test_small_chunk_extensions_are_accepted() -> None:
    app = Recorder()
    chunks = b"".join(b"3;name=value;other\r\nabc\r\n" for _ in range(100))
    with serving(app) as server:
        response = ask(server, CHUNKED_POST + chunks + b"0\r\n\r\n")
    assert response.status == 200
    assert app.bodies == [b"abc" * 100]


def test_millions_of_chunks_with_extensions_are_refused_within_the_first_few() -> None:
    # The abuse as sent: 1-byte chunks with 1 KiB extensions, 3 million of them. Fed one chunk per read, the
    # engine (the one the fixture chose) refuses within the first 17 (16 KiB of extensions), not after millions.
    parser = select_engine()(Config())
    parser.receive_data(CHUNKED_POST)
    assert isinstance(parser.next_event(), Request)
    one_chunk = b"1;ext=" + b"v" * 1018 + b"\r\nx\r\n"
    refused: PeerError | None = None
    fed = 0
    while refused is None and fed < 3_000_000:
        fed += 1
        parser.receive_data(one_chunk)
        try:
            while parser.next_event() is not Signal.NEED_DATA:
                pass
        except PeerError as exc:
            refused = exc
    assert refused is not None
    assert refused.status == 400
    assert fed <= 17
