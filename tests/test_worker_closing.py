"""How a worker's connections end after their last response, on both event loops: the FIN leaves with the
response's last bytes, even while the app goes on working after it, and never before bytes still queued."""

from __future__ import annotations

import socket
import time

import pytest

from tests.worker_fixture import ServerFactory, serve_fixture  # noqa: F401

LOOPS = ["asyncio", "uvloop"]


def _read_to_the_end(sock: socket.socket, wait: float) -> tuple[bytes, bool]:
    """What arrives within `wait` seconds, and whether the connection's end came with it."""
    sock.settimeout(wait)
    received, chunk = b"", b"?"
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except TimeoutError:
        pass
    return received, chunk == b""


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize(
    "request_line",
    [b"GET /then-block?t=4 HTTP/1.1\r\nHost: x\r\nConnection: close", b"GET /then-block?t=4 HTTP/1.0"],
    ids=["connection-close", "http-1.0"],
)
def test_the_end_of_the_connection_arrives_while_the_app_still_runs(
    serve: ServerFactory, loop: str, request_line: bytes
) -> None:
    server = serve("--asgi-loop", loop)
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(request_line + b"\r\n\r\n")
        started = time.monotonic()
        received, ended = _read_to_the_end(sock, wait=2)
        took = time.monotonic() - started
    assert received.startswith(b"HTTP/1.1 200 ")
    assert received.endswith(b"\r\n\r\ndone")
    # The app holds the worker's loop for 4 s after its response: the end must not wait for it.
    assert ended, "the connection did not end while the app was still running"
    assert took < 2


@pytest.mark.parametrize("loop", LOOPS)
def test_a_response_larger_than_the_socket_buffers_arrives_whole_before_the_end(
    serve: ServerFactory, loop: str
) -> None:
    size = 8 * 1024 * 1024
    server = serve("--asgi-loop", loop)
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        sock.sendall(b"GET /large?n=%d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % size)
        time.sleep(0.3)  # read late: the response's end waits in the worker's transport, not in the kernel
        received, ended = _read_to_the_end(sock, wait=5)
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert b"content-length: %d" % size in head.lower()
    assert ended
    assert len(body) == size
    assert body == b"x" * size
