"""HTTP/1.1 over real loopback sockets: `asgi_core.serve` with HTTP1Protocol in a thread, real clients.

Each test starts its own server on 127.0.0.1 port 0 and stops it before returning; every socket read has a
timeout, so a server that fails to answer fails the test instead of hanging it.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_core import Config, Receive, Registry, Scope, Send, ServerContext, UpgradeRequest
from asgi_http1 import HTTP1Protocol

# The shared helpers sit beside this file; pytest imports tests by path (--import-mode=importlib) without putting
# their directory on sys.path.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from http1_wire import (
    TIMEOUT,
    closed_by_peer,
    connect,
    echo,
    exchange,
    http1_engine,  # noqa: F401 - the autouse fixture that runs every test on both engines
    read_response,
    request,
    serving,
    stream_parts,
)


def test_keep_alive_reuses_one_connection() -> None:
    with serving(echo) as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
        ports = set()
        for index in range(3):
            conn.request("POST", f"/n{index}", body=b"x" * index)
            response = conn.getresponse()
            assert response.read() == b"x" * index
            assert response.getheader("x-path") == f"/n{index}"
            ports.add(response.getheader("x-client-port"))
        conn.close()
        assert len(ports) == 1


def test_idle_keep_alive_connection_is_closed_after_the_timeout() -> None:
    config = Config(lifespan="off", keep_alive_timeout=0.2)
    with serving(echo, config) as server, connect(server) as sock:
        stream = sock.makefile("rb")
        sock.sendall(request("/one"))
        assert read_response(stream).status == 200
        sock.sendall(request("/two"))  # within the timeout: still served
        assert read_response(stream).headers[b"x-path"] == b"/two"
        started = time.monotonic()
        assert closed_by_peer(sock, stream, wait=2)
        assert 0.1 < time.monotonic() - started < 1.5


def test_three_pipelined_requests_are_answered_in_order() -> None:
    async def slow_first(scope: Scope, receive: Receive, send: Send) -> None:
        await asyncio.sleep({"/1": 0.1, "/2": 0.05}.get(scope["path"], 0))
        await echo(scope, receive, send)

    with serving(slow_first) as server, connect(server) as sock:
        sock.sendall(request("/1") + request("/2", method="POST", body=b"two") + request("/3"))
        stream = sock.makefile("rb")
        responses = [read_response(stream) for _ in range(3)]
        assert [r.headers[b"x-path"] for r in responses] == [b"/1", b"/2", b"/3"]
        assert responses[1].body == b"two"


def test_chunked_request_and_streamed_response() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        parts = []
        while True:
            message = await receive()
            parts.append(message["body"])
            if not message["more_body"]:
                break
        await stream_parts(*[part.upper() for part in parts if part])(scope, receive, send)

    def upload() -> Iterator[bytes]:
        yield from (b"alpha-", b"beta-", b"gamma")

    with serving(app) as server, httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
        response = client.post("/", content=upload())
        assert response.status_code == 200
        assert response.headers["transfer-encoding"] == "chunked"
        assert response.text == "ALPHA-BETA-GAMMA"


def test_a_streamed_piece_reaches_the_client_while_the_app_waits() -> None:
    # Pieces sent in one turn of the event loop leave together; one sent before the app waits for something
    # must still leave at once, not with the end of the response (server-sent events depend on it).
    released = threading.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"first-", "more_body": True})
        await send({"type": "http.response.body", "body": b"second-", "more_body": True})
        await asyncio.to_thread(released.wait, TIMEOUT)
        await send({"type": "http.response.body", "body": b"last"})

    with serving(app) as server, connect(server) as sock:
        sock.sendall(request())
        received = b""
        while b"second-" not in received:  # times out (and fails) if the pieces wait for the response's end
            chunk = sock.recv(65536)
            assert chunk, "connection closed early"
            received += chunk
        assert not released.is_set()
        released.set()
        while not received.endswith(b"0\r\n\r\n"):
            received += sock.recv(65536)
    assert b"first-" in received
    assert received.index(b"second-") < received.index(b"last")


def test_response_trailers_for_a_client_that_accepts_them() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "trailers": True})
        await send({"type": "http.response.body", "body": b"payload"})
        await send({"type": "http.response.trailers", "headers": [(b"x-digest", b"abc")]})

    with serving(app) as server, connect(server) as sock:
        sock.sendall(request(headers="TE: trailers\r\n"))
        response = read_response(sock.makefile("rb"))
        assert (response.body, response.trailers) == (b"payload", {b"x-digest": b"abc"})


def test_http_1_0_client_gets_no_chunked_framing() -> None:
    with serving(stream_parts(b"a", b"b")) as server, connect(server) as sock:
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        raw = b""
        while chunk := sock.recv(65536):  # close-delimited: the close ends the body
            raw += chunk
        head, _, body = raw.partition(b"\r\n\r\n")
        assert body == b"ab"
        assert b"transfer-encoding" not in head.lower()
        assert b"connection: close" in head.lower()
    with serving(echo) as server:
        response, closed = exchange(server, b"POST / HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc")
        assert (response.body, response.headers[b"content-length"]) == (b"abc", b"3")
        assert response.headers[b"x-http-version"] == b"1.0"
        assert closed


def test_connection_close_is_honoured() -> None:
    with serving(echo) as server:
        response, closed = exchange(server, request(headers="Connection: close\r\n") + request("/ignored"))
        assert response.status == 200
        assert response.headers[b"connection"] == b"close"
        assert closed


@pytest.mark.parametrize(
    "raw",
    [request(headers="Connection: close\r\n"), b"GET / HTTP/1.0\r\n\r\n"],
    ids=["connection-close", "http-1.0-close-delimited"],
)
def test_the_fin_follows_the_last_response_at_once_while_the_app_still_runs(raw: bytes) -> None:
    """The client reads the end of a response that ends its connection as soon as the response is complete,
    not when the app returns (work after the response, such as a background task) nor at the loop's next turn:
    the server closes first, so the TIME_WAIT stays on its side rather than on the client's ports."""
    release = threading.Event()

    async def work_after_the_response(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})
        release.wait(TIMEOUT)  # holds the server's loop: whatever has not left by now leaves after the test

    with serving(work_after_the_response) as server, connect(server) as sock:
        try:
            sock.sendall(raw)
            received, chunk = b"", b"?"
            sock.settimeout(2)
            with contextlib.suppress(TimeoutError):
                while chunk := sock.recv(65536):
                    received += chunk
            finished = chunk == b""
        finally:
            release.set()
        assert received.startswith(b"HTTP/1.1 200 ")
        assert received.endswith(b"done")
        assert finished, "no end of the connection while the app was still running"


def test_a_connection_close_response_larger_than_the_socket_buffers_arrives_whole() -> None:
    """What the transport still holds when the response ends is sent before the connection closes."""
    body = bytes(range(256)) * 16384  # 4 MiB

    async def large(scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(body))]}
        )
        await send({"type": "http.response.body", "body": body})

    with serving(large) as server, connect(server, rcvbuf=16384) as sock:
        sock.sendall(request(headers="Connection: close\r\n"))
        time.sleep(0.2)  # the client reads late: the end of the response waits in the server's transport
        response = read_response(sock.makefile("rb"))
        assert len(response.body) == len(body)
        assert response.body == body


def test_head_request_has_length_but_no_body() -> None:
    with serving(echo) as server:
        response, closed = exchange(server, request(method="HEAD") + request("/after"), head=True)
        assert response.headers[b"content-length"] == b"0"
        assert not closed


def test_pathsend_goes_out_whole(tmp_path: Path) -> None:
    path = tmp_path / "blob.bin"
    path.write_bytes(bytes(range(256)) * 4000)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.pathsend", "path": str(path)})

    with serving(app) as server, httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
        for _ in range(2):  # twice on one connection: the framing after sendfile is right
            response = client.get("/")
            assert response.content == path.read_bytes()


# ---- 100-continue ------------------------------------------------------------------------------------------


def test_100_continue_only_once_the_app_reads_the_body() -> None:
    async def reads_late(scope: Scope, receive: Receive, send: Send) -> None:
        await asyncio.sleep(0.3)
        await echo(scope, receive, send)

    with serving(reads_late) as server, connect(server) as sock:
        sock.sendall(request(method="POST", headers="Expect: 100-continue\r\nContent-Length: 4\r\n"))
        sock.settimeout(0.15)
        with pytest.raises((TimeoutError, socket.timeout)):
            sock.recv(100)
        sock.settimeout(TIMEOUT)
        stream = sock.makefile("rb")
        assert read_response(stream).status == 100
        sock.sendall(b"body")
        response = read_response(stream)
        assert (response.status, response.body) == (200, b"body")


def test_no_100_continue_when_the_app_answers_without_reading() -> None:
    async def refuses(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 413, "headers": []})
        await send({"type": "http.response.body", "body": b"too big"})

    with serving(refuses) as server:
        raw = request(method="POST", headers="Expect: 100-continue\r\nContent-Length: 100000\r\n")
        response, closed = exchange(server, raw)
        assert (response.status, response.body) == (413, b"too big")
        assert closed


# ---- limits and deadlines ------------------------------------------------------------------------------------

LIMITS = Config(
    lifespan="off",
    limit_request_line=200,
    limit_request_fields=10,
    limit_request_field_size=300,
    max_request_body_size=1000,
)


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        pytest.param(request("/" + "a" * 300), 414, id="request-line"),
        pytest.param(request(headers="".join(f"X-{i}: v\r\n" for i in range(12))), 431, id="header-count"),
        pytest.param(request(headers="X-Big: " + "v" * 400 + "\r\n"), 431, id="header-size"),
        pytest.param(request(method="POST", body=b"b" * 1001), 413, id="body-content-length"),
    ],
)
def test_limits_answer_and_close(raw: bytes, status: int) -> None:
    called: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        called.append(scope["path"])
        await echo(scope, receive, send)

    with serving(app, LIMITS) as server:
        response, closed = exchange(server, raw)
        assert response.status == status
        assert closed
        assert called == []


def test_streamed_body_over_the_limit_gets_413() -> None:
    with serving(echo, LIMITS) as server, connect(server) as sock:
        sock.sendall(request(method="POST", headers="Transfer-Encoding: chunked\r\n"))
        stream = sock.makefile("rb")
        sock.sendall(b"258\r\n" + b"x" * 600 + b"\r\n")
        time.sleep(0.05)
        sock.sendall(b"258\r\n" + b"x" * 600 + b"\r\n")
        response = read_response(stream)
        assert response.status == 413
        assert closed_by_peer(sock, stream)


def test_slowloris_head_is_cut_at_the_deadline() -> None:
    config = Config(lifespan="off", header_timeout=0.3)
    with serving(echo, config) as server, connect(server) as sock:
        started = time.monotonic()
        sock.sendall(b"GET / HTTP/1.1\r\n")
        answer = b""
        try:
            for _ in range(60):  # a byte every 50 ms: would take 3 s, the deadline is 0.3 s
                sock.sendall(b"X")
                time.sleep(0.05)
        except (BrokenPipeError, ConnectionResetError):
            pass
        elapsed = time.monotonic() - started
        sock.settimeout(1)
        try:
            answer = sock.recv(1000)
        except (ConnectionResetError, TimeoutError):
            answer = b""
        assert elapsed < 2.0, "the trickling client was not cut off"
        assert answer == b"" or answer.startswith(b"HTTP/1.1 408 ")


def test_silent_connection_is_closed_at_the_head_deadline() -> None:
    config = Config(lifespan="off", header_timeout=0.2)
    with serving(echo, config) as server, connect(server) as sock:
        started = time.monotonic()
        assert sock.recv(100) == b""
        assert time.monotonic() - started < 1.5


# ---- malformed requests and broken peers ----------------------------------------------------------------------

HOST = b"Host: test\r\n"
SMUGGLING = [
    b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 4\r\nContent-Length: 4\r\n\r\nabcd",
    b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 4x\r\n\r\nabcd",
    b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\nz\r\n",
    b"GET / HTTP/1.1\r\n" + HOST + b"X-A: b\r\n c\r\n\r\n",
    b"GET / HTTP/1.1\n" + HOST + b"\n",
    b"GET / HTTP/1.1\r\n" + HOST + b"X-A: b\rc\r\n\r\n",
    b"GET / HTTP/1.1\r\n" + HOST + b"X-A: \x00\r\n\r\n",
    b"GET / HTTP/1.1\r\n" + HOST + b"Bad Name: x\r\n\r\n",
    b"G(T / HTTP/1.1\r\n" + HOST + b"\r\n",
]


def test_malformed_requests_get_400_and_never_disturb_another_connection() -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["path"])
        await echo(scope, receive, send)

    with serving(app) as server, connect(server) as bystander:
        stream = bystander.makefile("rb")
        bystander.sendall(request("/before"))
        assert read_response(stream).status == 200
        for raw in SMUGGLING:
            response, closed = exchange(server, raw)
            assert (response.status, closed) == (400, True), raw
        bystander.sendall(request("/after"))
        assert read_response(stream).headers[b"x-path"] == b"/after"
        # Only the bystander's requests and the one with a valid head (bad chunk size) reached the app,
        # and that one never saw a body.
        assert seen.count("/") == 1
        assert seen[0] == "/before"
        assert seen[-1] == "/after"


def test_client_disconnect_mid_request_reaches_the_app() -> None:
    outcome: list[str] = []
    done = threading.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect" or not message.get("more_body"):
                outcome.append(message["type"])
                done.set()
                return

    with serving(app) as server:
        with connect(server) as sock:
            sock.sendall(request(method="POST", headers="Content-Length: 100\r\n") + b"only ten b")
            time.sleep(0.05)
        assert done.wait(TIMEOUT)
        assert outcome == ["http.disconnect"]


def test_half_closed_client_still_gets_its_response() -> None:
    async def slow(scope: Scope, receive: Receive, send: Send) -> None:
        await asyncio.sleep(0.05)
        await echo(scope, receive, send)

    with serving(slow) as server, connect(server) as sock:
        sock.sendall(request(method="POST", body=b"sent before the half-close"))
        sock.shutdown(socket.SHUT_WR)
        stream = sock.makefile("rb")
        response = read_response(stream)
        assert response.body == b"sent before the half-close"
        assert closed_by_peer(sock, stream)


@pytest.mark.parametrize(
    "start",
    [
        {"type": "http.response.start", "status": "200"},
        {"type": "http.response.start", "status": 200, "headers": [("x-str", "not bytes")]},
    ],
)
def test_invalid_app_message_is_a_500_for_the_client(start: dict[str, Any]) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(start)

    with serving(app) as server, httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
        response = client.get("/")
        assert response.status_code == 500
        assert response.text == "Internal Server Error"


def test_a_client_that_does_not_read_holds_back_the_app() -> None:
    sent = [0]
    finished = threading.Event()
    chunk = b"z" * 65536
    total = 64 * 1024 * 1024

    async def firehose(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % total)]})
        while sent[0] < total:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            sent[0] += len(chunk)
        await send({"type": "http.response.body"})
        finished.set()

    with serving(firehose) as server, connect(server, rcvbuf=16384) as sock:
        sock.sendall(request())
        previous = -1
        deadline = time.monotonic() + TIMEOUT
        while sent[0] != previous and time.monotonic() < deadline:  # until the app stops getting anywhere
            previous = sent[0]
            time.sleep(0.2)
        stalled_at = sent[0]
        assert not finished.is_set()
        assert stalled_at < 16 * 1024 * 1024, "the server buffered what its client did not read"
        received = 0
        while received < total + 100:  # now read it all: the app resumes and finishes
            data = sock.recv(1 << 20)
            if not data:
                break
            received += len(data)
            if finished.is_set() and received >= total:
                break
        assert finished.wait(TIMEOUT)


# ---- upgrade hand-off ----------------------------------------------------------------------------------------


class ShoutProtocol(asyncio.Protocol):
    """A made-up protocol for the test: answers every chunk in upper case."""

    def __init__(self, request: UpgradeRequest) -> None:
        self.request = request
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: shout\r\nConnection: Upgrade\r\n\r\n")

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data.upper())


class ShoutUpgrade:
    token = "shout"

    def __init__(self) -> None:
        self.leftovers: list[bytes] = []

    def accepts(self, request: UpgradeRequest) -> bool:
        return request.method == "GET"

    def create_protocol(self, context: ServerContext, request: UpgradeRequest) -> asyncio.Protocol:
        self.leftovers.append(request.leftover)
        return ShoutProtocol(request)


def test_upgrade_hands_the_connection_to_a_registered_handler() -> None:
    handler = ShoutUpgrade()
    registry = Registry(discover=False)
    registry.add_upgrade(handler)
    with serving(echo, registry=registry) as server, connect(server) as sock:
        sock.sendall(request("/room", headers="Connection: Upgrade\r\nUpgrade: Shout\r\n") + b"early words")
        stream = sock.makefile("rb")
        assert read_response(stream).status == 101
        assert stream.read(len(b"EARLY WORDS")) == b"EARLY WORDS"
        sock.sendall(b"later")
        assert stream.read(5) == b"LATER"
    assert handler.leftovers == [b"early words"]


def test_unknown_upgrade_is_served_as_plain_http() -> None:
    with serving(echo) as server:
        raw = request("/plain", headers="Connection: Upgrade\r\nUpgrade: made-up-protocol/9\r\n") + request(
            "/next"
        )
        with connect(server) as sock:
            sock.sendall(raw)
            stream = sock.makefile("rb")
            assert read_response(stream).headers[b"x-path"] == b"/plain"
            assert read_response(stream).headers[b"x-path"] == b"/next"


def test_a_protocol_built_outside_the_loop_serves_on_the_context_loop() -> None:
    # A server that knows its loop hands it over in the context (saving a get_running_loop per connection): the
    # protocol then needs no running loop to be built, and serves on the loop it was given.
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    loop = asyncio.new_event_loop()
    try:
        protocol = HTTP1Protocol(ServerContext(app=app, config=Config(lifespan="off"), loop=loop))
        server = loop.run_until_complete(loop.create_server(lambda: protocol, "127.0.0.1", 0))
        port = server.sockets[0].getsockname()[1]

        def client() -> bytes:
            with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                return b"".join(iter(lambda: sock.recv(65536), b""))

        response = loop.run_until_complete(loop.run_in_executor(None, client))
        server.close()
        loop.run_until_complete(server.wait_closed())
    finally:
        loop.close()
    assert response.startswith(b"HTTP/1.1 200 ")
    assert response.endswith(b"\r\n\r\nok")
