"""examples/embedded_server.py (docs/how-to/embed-server.md) as a real process: asgi-core's Server without
Gunicorn serves HTTP/1.1, HTTP/2 by ALPN and by prior knowledge, WebSocket and PROXY v2 under its connection
cap, and drains on SIGTERM."""

from __future__ import annotations

import os
import socket
import ssl
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import trustme
from websockets.sync.client import connect

from .worker_fixture import ROOT, free_port

DEADLINE = 15.0


@dataclass
class Example:
    proc: subprocess.Popen[str]
    port: int
    tls_port: int
    client_tls: ssl.SSLContext


@pytest.fixture
def example(tmp_path: Path) -> Iterator[Example]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    client_tls = ssl.create_default_context()
    ca.configure_trust(client_tls)
    port, tls_port = free_port(), free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "TLS_PORT": str(tls_port),
        "CERTFILE": str(certfile),
        "KEYFILE": str(keyfile),
        "MAX_CONNECTIONS": "3",
        "PYTHONUNBUFFERED": "1",
    }
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / "embedded_server.py")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline(), proc.stdout.readline()]
        assert lines[0].startswith("Serving http, h2 (h2c: both) on 127.0.0.1"), lines
        assert lines[1].startswith("Serving http, h2 over TLS on 127.0.0.1"), lines
        yield Example(proc, port, tls_port, client_tls)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(DEADLINE)


def proxy_v2_request(client: str) -> bytes:
    body = socket.inet_aton(client) + socket.inet_aton("127.0.0.1") + struct.pack("!HH", 4711, 8000)
    header = b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x21, 0x11]) + struct.pack("!H", len(body)) + body
    return header + b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


def exchange(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE) as sock:
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        return answer


def test_embedded_server_serves_every_protocol_and_drains(example: Example) -> None:
    base, tls_base = f"http://127.0.0.1:{example.port}", f"https://127.0.0.1:{example.tls_port}"
    assert httpx.get(base + "/").text == "HTTP/1.1 http from 127.0.0.1, lifespan yes\n"
    with httpx.Client(http1=False, http2=True) as h2c:  # prior knowledge, cleartext
        assert h2c.get(base + "/").text == "HTTP/2 http from 127.0.0.1, lifespan yes\n"
    with httpx.Client(http2=True, verify=example.client_tls) as alpn:  # ALPN offers h2 first
        assert alpn.get(tls_base + "/").text == "HTTP/2 https from 127.0.0.1, lifespan yes\n"
    with httpx.Client(verify=example.client_tls) as http11:  # a client that offers only http/1.1
        assert http11.get(tls_base + "/").text == "HTTP/1.1 https from 127.0.0.1, lifespan yes\n"
    with connect(f"ws://127.0.0.1:{example.port}/ws", open_timeout=DEADLINE) as websocket:
        websocket.send("hi")
        assert websocket.recv(timeout=DEADLINE) == "echo: hi"
    # A local load balancer's PROXY v2 header: the client it announces is the one the app sees.
    assert exchange(example.port, proxy_v2_request("192.0.2.7")).endswith(b"from 192.0.2.7, lifespan yes\n")

    # The cap (3): three idle connections fill it; a fourth client waits in the backlog, not refused.
    idle = [socket.create_connection(("127.0.0.1", example.port)) for _ in range(3)]
    time.sleep(0.3)
    waiting = socket.create_connection(("127.0.0.1", example.port), timeout=DEADLINE)
    waiting.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    waiting.settimeout(0.5)
    with pytest.raises(TimeoutError):
        waiting.recv(100)
    idle[0].close()  # a slot frees up: the waiting client is accepted and served
    waiting.settimeout(DEADLINE)
    assert waiting.recv(100).startswith(b"HTTP/1.1 200 OK")
    waiting.close()

    # Two connections that never sent a byte are still open: the drain gives them its idle grace (3 s by
    # default) to send a request, then closes them; it does not wait for the whole graceful timeout (10 s).
    started = time.monotonic()
    example.proc.terminate()
    assert example.proc.wait(DEADLINE) == 0
    assert time.monotonic() - started < 6.0
    assert example.proc.stdout is not None
    assert "Stopped after" in example.proc.stdout.read()
    for sock in idle[1:]:
        sock.close()
