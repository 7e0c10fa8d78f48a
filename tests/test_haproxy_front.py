"""A real HAProxy (Debian's) in front of a real Gunicorn master with the gunicorn-asgi worker, all on loopback:
the three ways a pool of servers usually sits behind it, as docs/how-to/load-balancers.md configures them.

- HTTP mode with `option forwardfor`: the app sees the client's address, not HAProxy's.
- TCP mode with `send-proxy-v2` and `--proxy-protocol v2`: the client's address and port reach the app.
- HTTP mode speaking HTTP/2 to the backend (`proto h2` in cleartext, `alpn h2` over TLS).
- Two machines, one of them stopped with SIGTERM under load: no request fails.

The client connects from 127.0.0.2 (still loopback) so that its address differs from HAProxy's 127.0.0.1.
"""

from __future__ import annotations

import json
import signal
import socket
import ssl
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from websockets.sync.client import connect

from tests.haproxy_fixture import HAProxyFactory, haproxy_fixture  # noqa: F401
from tests.worker_fixture import ServerFactory, serve_fixture  # noqa: F401

CLIENT_ADDRESS = "127.0.0.2"


def client() -> httpx.Client:
    return httpx.Client(transport=httpx.HTTPTransport(local_address=CLIENT_ADDRESS), timeout=10)


def scope_from_raw_socket(port: int) -> tuple[dict[str, Any], int]:
    """GET /scope on a connection from CLIENT_ADDRESS: (the app's view of the request, our source port)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(CLIENT_ADDRESS, 0)) as sock:
        source_port = int(sock.getsockname()[1])
        sock.sendall(b"GET /scope HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), answer[:200]
    if b"transfer-encoding: chunked" in head.lower():
        size, _, rest = body.partition(b"\r\n")
        body = rest[: int(size, 16)]
    return json.loads(body), source_port


@pytest.mark.parametrize("engine", ["h11", "httptools"])
def test_http_mode_forwards_the_client_address(serve: ServerFactory, haproxy: HAProxyFactory, engine: str) -> None:
    server = serve("--forwarded-allow-ips", "127.0.0.1", env={"ASGI_HTTP1_PARSER": engine})
    front = haproxy(mode="http", server=f"127.0.0.1:{server.port}", frontend="option forwardfor")
    with client() as http:
        for _ in range(3):  # HAProxy reuses its backend connections; every request still carries its client
            info = http.get(front.url("/scope")).json()
            assert info["client"][0] == CLIENT_ADDRESS
            assert info["http_version"] == "1.1"
    # The same route without HAProxy in the trust list: the forwarded header is ignored.
    untrusting = serve("--forwarded-allow-ips", "10.9.9.9", env={"ASGI_HTTP1_PARSER": engine})
    front = haproxy(mode="http", server=f"127.0.0.1:{untrusting.port}", frontend="option forwardfor")
    with client() as http:
        assert http.get(front.url("/scope")).json()["client"][0] == "127.0.0.1"


@pytest.mark.parametrize("engine", ["h11", "httptools"])
def test_http_mode_carries_websockets(serve: ServerFactory, haproxy: HAProxyFactory, engine: str) -> None:
    server = serve(env={"ASGI_HTTP1_PARSER": engine})
    front = haproxy(mode="http", server=f"127.0.0.1:{server.port}", frontend="option forwardfor")
    with connect(f"ws://127.0.0.1:{front.port}/ws", open_timeout=10) as websocket:
        for message in ("through", "haproxy"):
            websocket.send(message)
            assert websocket.recv(timeout=5) == message


@pytest.mark.parametrize("engine", ["h11", "httptools"])
def test_tcp_mode_with_proxy_protocol_v2_gives_the_app_the_client(
    serve: ServerFactory, haproxy: HAProxyFactory, engine: str
) -> None:
    server = serve(
        "--proxy-protocol", "v2", "--proxy-allow-from", "127.0.0.1", env={"ASGI_HTTP1_PARSER": engine}, wait=False
    )
    front = haproxy(mode="tcp", server=f"127.0.0.1:{server.port}", server_options="send-proxy-v2")
    server.wait_for_output("Booting worker")
    info, source_port = _first_answer(front.port)
    assert info["client"] == [CLIENT_ADDRESS, source_port]  # address and port: HAProxy's own would differ


def _first_answer(port: int) -> tuple[dict[str, Any], int]:
    # The worker may still be starting behind HAProxy: a refused backend connection closes ours empty.
    last: Exception | None = None
    for _ in range(100):
        try:
            return scope_from_raw_socket(port)
        except (AssertionError, OSError, ValueError) as exc:
            last = exc
            time.sleep(0.1)
    raise AssertionError(f"no answer through HAProxy: {last}")


def test_http2_to_a_cleartext_backend(serve: ServerFactory, haproxy: HAProxyFactory) -> None:
    # `both`: HTTP/2 for HAProxy's preface, HTTP/1.1 still for the fixture's readiness check.
    server = serve("--http-protocols", "h2,h1", "--http2-cleartext", "both")
    front = haproxy(mode="http", server=f"127.0.0.1:{server.port}", server_options="proto h2")
    with client() as http:
        info = http.get(front.url("/scope")).json()
        assert info["http_version"] == "2"  # HTTP/1.1 from us to HAProxy, HTTP/2 from HAProxy to the worker
        body = b"z" * 300_000  # bigger than HTTP/2's initial windows: flow control both ways
        assert http.post(front.url("/echo"), content=body).text == str(len(body))


def test_http2_to_a_tls_backend_by_alpn(serve: ServerFactory, haproxy: HAProxyFactory, tmp_path: Path) -> None:
    ca = trustme.CA()
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "server.pem"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    trust = ssl.create_default_context()
    ca.configure_trust(trust)
    server = serve("--certfile", str(tmp_path / "server.pem"), "--http-protocols", "h2,h1", tls=trust)
    front = haproxy(
        mode="http",
        server=f"127.0.0.1:{server.port}",
        server_options=f"ssl verify required ca-file {tmp_path / 'ca.pem'} alpn h2,http/1.1",
    )
    with client() as http:
        info = http.get(front.url("/scope")).json()
        assert info["http_version"] == "2"
        assert info["scheme"] == "https"


@pytest.mark.parametrize("engine", ["h11", "httptools"])
def test_a_machine_leaving_the_pool_fails_no_request(
    serve: ServerFactory, haproxy: HAProxyFactory, engine: str
) -> None:
    # docs/how-to/load-balancers.md, "Draining a machine", step 3: even without telling HAProxy first, a
    # master stopped with SIGTERM under load costs no request, thanks to the server's drain on one side and
    # `option redispatch` + `retry-on` on the other.
    leaving = serve("--graceful-timeout", "5", env={"ASGI_HTTP1_PARSER": engine}, wait=False)
    staying = serve("--graceful-timeout", "5", env={"ASGI_HTTP1_PARSER": engine}, wait=False)
    leaving.wait_ready()
    staying.wait_ready()
    front = haproxy(
        mode="http",
        server=f"127.0.0.1:{leaving.port}",
        server_options="check inter 500ms fall 1",
        backend=f"""
            balance roundrobin
            option redispatch
            retries 3
            retry-on conn-failure empty-response
            server staying 127.0.0.1:{staying.port} check inter 500ms fall 1
        """,
    )
    pids: dict[str, int] = {}
    failures: list[str] = []
    deadline = time.monotonic() + 6.0  # bounded: about 3 s before the stop and 3 s after
    stopped_at: float | None = None
    with client() as http:
        while time.monotonic() < deadline:
            if stopped_at is None and time.monotonic() > deadline - 3.0:
                leaving.send_signal(signal.SIGTERM)
                stopped_at = time.monotonic()
            try:
                response = http.get(front.url("/pid"))
            except httpx.HTTPError as exc:
                failures.append(repr(exc))
                continue
            if response.status_code != 200:
                failures.append(f"{response.status_code} {response.text[:100]}")
            else:
                pids[response.text] = pids.get(response.text, 0) + 1
    assert leaving.wait_exit() == 0
    assert failures == [], f"{len(failures)} failed of {sum(pids.values()) + len(failures)}: {failures[:5]}"
    assert len(pids) == 2  # both machines served before one left
