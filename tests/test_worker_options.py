"""Gunicorn's request limits and timeouts, and the settings gunicorn-asgi adds, as a client sees them."""

from __future__ import annotations

import socket
import struct
import time
from pathlib import Path

from tests.worker_fixture import ServerFactory, raw_exchange, serve_fixture, until  # noqa: F401


def test_request_limits_answer_414_and_431(serve: ServerFactory) -> None:
    server = serve(
        "--limit-request-line", "100", "--limit-request-fields", "5", "--limit-request-field_size", "200"
    )
    ok = raw_exchange(server.port, b"GET /" + b"a" * 50 + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert ok.startswith(b"HTTP/1.1 200")
    too_long = raw_exchange(server.port, b"GET /" + b"a" * 200 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert too_long.startswith(b"HTTP/1.1 414")
    many = b"".join(b"X-%d: y\r\n" % i for i in range(10))
    assert raw_exchange(server.port, b"GET / HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n").startswith(b"HTTP/1.1 431")
    big = b"X-Big: " + b"y" * 300 + b"\r\n"
    assert raw_exchange(server.port, b"GET / HTTP/1.1\r\nHost: x\r\n" + big + b"\r\n").startswith(b"HTTP/1.1 431")


def test_keep_alive_and_header_timeout(serve: ServerFactory) -> None:
    server = serve("--keep-alive", "1", "--header-timeout", "0.5")
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        assert sock.recv(1) == b""  # closed by the server once idle for --keep-alive
        assert 0.7 < time.monotonic() - started < 3.0
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # a head that never ends (slowloris)
        started = time.monotonic()
        assert sock.recv(65536).startswith(b"HTTP/1.1 408")
        assert 0.3 < time.monotonic() - started < 2.0


def test_disconnect_grace_period_cancels_an_app_that_ignores_the_disconnect(
    serve: ServerFactory, tmp_path: Path
) -> None:
    log = tmp_path / "events"
    server = serve("--asgi-disconnect-grace-period", "0", env={"WORKER_TEST_EVENTS": str(log)})
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GET /slow?t=30 HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.3)
        # Reset rather than close: a FIN alone may be a half-close from a client still awaiting its answer.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    until(lambda: log.exists() and "cancelled" in log.read_text(), 5, "the abandoned request was not cancelled")


def test_worker_connections_is_a_per_worker_cap(serve: ServerFactory) -> None:
    server = serve("--worker-connections", "2", "--keep-alive", "30")
    held = []
    for _ in range(2):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        held.append(sock)
    waiting = socket.create_connection(("127.0.0.1", server.port), timeout=5)  # lands in the backlog
    try:
        waiting.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        waiting.settimeout(0.7)
        try:
            early = waiting.recv(65536)
        except TimeoutError:
            early = b""
        assert early == b"", "a third connection was served past worker_connections=2"
        held.pop().close()  # one slot frees up: the waiting client is accepted and answered
        waiting.settimeout(5)
        assert waiting.recv(65536).startswith(b"HTTP/1.1 200")
    finally:
        waiting.close()
        for sock in held:
            sock.close()
    assert "worker_connections=2" in server.output()
