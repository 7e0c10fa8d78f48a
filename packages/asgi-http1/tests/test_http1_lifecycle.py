"""A connection's life over real loopback sockets, on both engines: how it ends (client close over TLS, the two
steps of a server drain) and how much it holds for a client that does not read."""

from __future__ import annotations

import asyncio
import logging
import select
import socket
import ssl
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from asgi_core import ClientDisconnected, Config, Receive, Scope, Send

# The shared helpers sit beside this file; pytest imports tests by path (--import-mode=importlib) without putting
# their directory on sys.path.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from http1_wire import (
    TIMEOUT,
    Response,
    Server,
    closed_by_peer,
    connect,
    echo,
    http1_engine,  # noqa: F401 - the autouse fixture that runs every test on both engines
    read_response,
    request,
    serving,
)


def wait_until_closed(server: Server) -> None:
    """Until the server has no connection left (it dropped the last one), or TIMEOUT."""
    assert server.context is not None
    deadline = time.monotonic() + TIMEOUT
    while server.context.connections and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not server.context.connections


# ---- TLS ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a certificate for 127.0.0.1, and a client context that trusts it."""
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return server, client


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(f"{record.levelname} {record.getMessage()}")


@pytest.fixture
def asyncio_log() -> Iterator[Records]:
    """What the asyncio logger says meanwhile, from any thread (the server runs in its own)."""
    records = Records()
    logger = logging.getLogger("asyncio")
    logger.addHandler(records)
    try:
        yield records
    finally:
        logger.removeHandler(records)


@pytest.mark.parametrize("close_notify", [True, False], ids=["close-notify", "tcp-fin"])
def test_a_tls_keep_alive_session_closed_by_the_client_logs_nothing(
    tls: tuple[ssl.SSLContext, ssl.SSLContext], asyncio_log: Records, close_notify: bool
) -> None:
    server_context, client_context = tls
    with serving(echo, ssl_context=server_context) as server:
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)
        sock = client_context.wrap_socket(raw, server_hostname="127.0.0.1")
        stream = sock.makefile("rb")
        for path in ("/one", "/two"):
            sock.sendall(request(path))
            assert read_response(stream).headers[b"x-path"] == path.encode()
        stream.close()
        if close_notify:
            sock.unwrap().close()
        else:
            sock.close()
        wait_until_closed(server)
    assert not [message for message in asyncio_log.messages if "WARNING" in message or "ERROR" in message]


# ---- slow readers ---------------------------------------------------------------------------------------------

MIB = 1 << 20


def test_a_large_response_to_a_closing_request_ends_with_the_server_closing() -> None:
    # A body large enough to leave with its head in one `writelines`: the connection must still close after it.
    # (CPython 3.12+'s selector transport never drains an empty piece given to writelines and never closes.)
    async def big(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % MIB)]})
        await send({"type": "http.response.body", "body": b"b" * MIB})

    with serving(big, direct=True) as server, connect(server) as sock:
        sock.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        stream = sock.makefile("rb")
        assert len(read_response(stream).body) == MIB
        assert closed_by_peer(sock, stream)
        wait_until_closed(server)


def test_pipelined_requests_wait_while_their_client_does_not_read() -> None:
    # 32 pipelined GETs of 1 MiB each and a client that reads nothing: the server starts the next request only
    # once the previous response has left its write buffer, so only the few that the kernel's socket buffers
    # took are answered meanwhile; before, all 32 were, and the server held 32 MiB for this one client.
    started: list[str] = []
    body = b"b" * MIB

    async def big(scope: Scope, receive: Receive, send: Send) -> None:
        started.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % MIB)]})
        await send({"type": "http.response.body", "body": body})

    paths = [f"/{index}" for index in range(32)]
    with serving(big) as server, connect(server, rcvbuf=16384) as sock:
        sock.sendall(b"".join(request(path) for path in paths))
        time.sleep(2)
        assert len(started) <= 8, f"{len(started)} responses of 1 MiB queued for a client that reads nothing"
        stream = sock.makefile("rb")
        for _ in paths:  # now it reads: every response comes, whole and in order
            response = read_response(stream)
            assert (response.status, len(response.body)) == (200, MIB)
        assert started == paths


def test_pipelined_requests_sent_before_a_half_close_are_all_answered_to_a_slow_reader() -> None:
    # The client sends its requests, closes its side and reads slowly: the requests waiting for the write buffer
    # are still answered, every one, before the server closes.
    paths = [f"/{index}" for index in range(6)]

    async def big(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % MIB)]})
        await send({"type": "http.response.body", "body": scope["path"].encode().ljust(MIB, b".")})

    with serving(big) as server, connect(server, rcvbuf=16384) as sock:
        sock.sendall(b"".join(request(path) for path in paths))
        sock.shutdown(socket.SHUT_WR)
        time.sleep(0.5)
        stream = sock.makefile("rb")
        bodies = [read_response(stream).body.rstrip(b".") for _ in paths]
        assert bodies == [path.encode() for path in paths]
        assert stream.read(1) == b""


# ---- the drain ------------------------------------------------------------------------------------------------


def drain(server: Server) -> None:
    """Step 1 of the drain (`shutdown`) on every connection of the server, from its loop."""
    assert server.context is not None
    server.loop.call_soon_threadsafe(server.context.drain_connections)


def going_away(server: Server) -> None:
    """Step 2 of the drain (`going_away`) on every connection of the server, from its loop."""
    assert server.context is not None
    server.loop.call_soon_threadsafe(server.context.close_connections)


def test_a_request_sent_during_the_drain_grace_is_answered_with_connection_close() -> None:
    config = Config(lifespan="off", drain_idle_grace=2.0)
    with serving(echo, config, direct=True) as server, connect(server) as sock:
        stream = sock.makefile("rb")
        sock.sendall(request("/one"))
        assert read_response(stream).status == 200
        drain(server)  # the connection is idle: its client may be about to send the next request
        time.sleep(0.3)
        sock.sendall(request("/two"))
        response = read_response(stream)
        assert (response.status, response.headers[b"x-path"]) == (200, b"/two")
        assert response.headers[b"connection"] == b"close"
        assert closed_by_peer(sock, stream)


def test_an_idle_connection_closes_when_the_drain_grace_passes() -> None:
    config = Config(lifespan="off", drain_idle_grace=0.5)
    with serving(echo, config, direct=True) as server, connect(server) as sock:
        stream = sock.makefile("rb")
        sock.sendall(request("/one"))
        assert read_response(stream).status == 200
        drain(server)
        readable, _, _ = select.select([sock], [], [], 0.1)
        assert not readable  # not closed at once: the grace has just begun
        assert closed_by_peer(sock, stream, wait=TIMEOUT)
        wait_until_closed(server)


def test_a_connection_made_during_the_drain_is_answered_once_with_connection_close() -> None:
    with serving(echo, direct=True) as server:
        drain(server)
        time.sleep(0.1)
        with connect(server) as sock:
            stream = sock.makefile("rb")
            sock.sendall(request("/late") + request("/later"))
            response = read_response(stream)
            assert (response.headers[b"x-path"], response.headers[b"connection"]) == (b"/late", b"close")
            assert closed_by_peer(sock, stream)


def test_pipelined_requests_waiting_for_a_slow_reader_end_with_connection_close_once_draining() -> None:
    # Requests wait for the client to read when the drain starts: the first one served after that says
    # `Connection: close`, and the connection closes after it.
    async def big(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % MIB)]})
        await send({"type": "http.response.body", "body": b"b" * MIB})

    with serving(big, direct=True) as server, connect(server, rcvbuf=16384) as sock:
        sock.sendall(b"".join(request(f"/{index}") for index in range(16)))
        time.sleep(1)
        drain(server)
        time.sleep(0.2)
        stream = sock.makefile("rb")
        responses: list[Response] = []
        while not responses or b"connection" not in responses[-1].headers:
            responses.append(read_response(stream))
        assert responses[-1].headers[b"connection"] == b"close"
        assert all(response.status == 200 for response in responses)
        assert len(responses) < 16  # pipelined requests not started yet are not served
        assert stream.read(1) == b""


def test_going_away_ends_a_server_sent_event_stream_with_http_disconnect() -> None:
    seen_disconnect = threading.Event()

    async def events(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        receiving = asyncio.ensure_future(receive())
        while True:
            await send({"type": "http.response.body", "body": b"data: tick\n\n", "more_body": True})
            done, _ = await asyncio.wait({receiving}, timeout=0.05)
            if done:
                if receiving.result()["type"] == "http.disconnect":
                    seen_disconnect.set()
                    return
                receiving = asyncio.ensure_future(receive())

    with serving(events, direct=True) as server, connect(server) as sock:
        sock.sendall(request("/events"))
        received = sock.recv(65536)
        assert received.startswith(b"HTTP/1.1 200 ")
        drain(server)  # step 1 leaves a response in flight alone
        while received.count(b"data: tick") < 3:
            received += sock.recv(65536)
        going_away(server)
        assert seen_disconnect.wait(TIMEOUT)
        while sock.recv(65536):  # the stream ends: the connection closes (a socket timeout fails the test)
            pass
        wait_until_closed(server)


def test_going_away_closes_a_connection_whose_client_reads_nothing() -> None:
    # The app is held back by a full write buffer and its client never reads: the connection must still close
    # once the drain's time is up, not wait for buffers that will never drain.
    disconnected = threading.Event()
    chunk = b"z" * 65536

    async def firehose(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            while True:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except ClientDisconnected:  # the server went away
            disconnected.set()

    config = Config(lifespan="off", disconnect_grace_period=0.5)
    with serving(firehose, config, direct=True) as server, connect(server, rcvbuf=16384) as sock:
        sock.sendall(request("/firehose"))
        time.sleep(0.5)  # the buffers fill up and the app waits for them to drain
        going_away(server)
        wait_until_closed(server)
        assert disconnected.wait(TIMEOUT)


# ---- the send deadline ----------------------------------------------------------------------------------------


def test_a_client_that_reads_nothing_is_cut_after_the_send_timeout() -> None:
    # A streaming response to a client that never reads: memory is bounded by the write buffer, and after
    # send_timeout without progress the connection is cut, so that the app hears of it and the socket is freed.
    outcome: list[str] = []

    async def endless(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            while True:
                await send({"type": "http.response.body", "body": b"x" * 65536, "more_body": True})
        except OSError:  # asgi_core.ClientDisconnected
            outcome.append("disconnected")

    config = Config(lifespan="off", send_timeout=0.5)
    with serving(endless, config) as server, connect(server, rcvbuf=16384) as sock:
        sock.sendall(request("/"))
        deadline = time.monotonic() + 5
        while not outcome and time.monotonic() < deadline:
            time.sleep(0.05)
        assert outcome == ["disconnected"]
        sock.settimeout(5)
        received = 0
        while chunk := sock.recv(1 << 20):  # the response was endless: an end of stream means the server cut it
            received += len(chunk)
        assert received < 16 * MIB  # what the socket buffers held, not more


def test_a_slow_but_steady_reader_is_not_cut() -> None:
    async def big(scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % (4 * MIB))]}
        )
        for _ in range(64):
            await send({"type": "http.response.body", "body": b"y" * 65536, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    config = Config(lifespan="off", send_timeout=0.5)
    with serving(big, config) as server, connect(server, rcvbuf=16384) as sock:
        sock.sendall(request("/"))
        stream = sock.makefile("rb")
        head = stream.readline()
        assert head.startswith(b"HTTP/1.1 200")
        received = 0
        while received < 2 * MIB:  # 2 MiB in about 1.6 s: slower than the whole response, never stalled long
            received += len(stream.read(65536))
            time.sleep(0.05)
        assert received >= 2 * MIB
