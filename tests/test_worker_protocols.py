"""The protocols the worker composes through the asgi-core registry, served by a real Gunicorn: WebSocket
(asgi-wsproto), HTTP/2 by ALPN and as h2c (asgi-h2), uWSGI (asgi-uwsgi), each with Gunicorn's settings."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import ssl
import struct
from pathlib import Path

import h2.config
import h2.connection
import h2.events
import h2.settings
import httpx
import pytest
import trustme
import websockets

from tests.worker_fixture import ServerFactory, raw_exchange, serve_fixture, until  # noqa: F401


def test_websocket_echo_message_size_limit_and_shutdown_close_code(serve: ServerFactory, tmp_path: Path) -> None:
    log = tmp_path / "events"
    server = serve("--websocket-max-message-size", "1000", env={"WORKER_TEST_EVENTS": str(log)})
    url = f"ws://127.0.0.1:{server.port}/ws"

    async def session() -> tuple[int | None, int | None]:
        async with websockets.connect(url) as ws:
            await ws.send("hello")
            assert await ws.recv() == "hello"
            await ws.send(b"\x00" * 1000)
            assert await ws.recv() == b"\x00" * 1000
            await ws.send("x" * 1001)  # over --websocket-max-message-size
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
            too_big = ws.close_code
        async with websockets.connect(url) as ws:
            await ws.send("still here")
            assert await ws.recv() == "still here"
            server.send_signal(signal.SIGTERM)  # graceful stop: open WebSockets are told "going away"
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
            return too_big, ws.close_code

    too_big, going_away = asyncio.run(session())
    assert too_big == 1009
    assert going_away == 1001
    assert server.wait_exit() == 0


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def test_http2_by_alpn_with_gunicorns_http2_settings(serve: ServerFactory, ca: trustme.CA, tmp_path: Path) -> None:
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "server.pem"))
    client = ssl.create_default_context()
    ca.configure_trust(client)
    server = serve(
        "--certfile", str(tmp_path / "server.pem"), "--http-protocols", "h2,h1",
        "--http2-max-concurrent-streams", "7", "--http2-initial-window-size", "100000",
        tls=client,
    )  # fmt: skip
    with httpx.Client(http2=True, verify=client) as http2:
        response = http2.get(server.url("/scope"))
        assert response.http_version == "HTTP/2"
        assert response.json()["http_version"] == "2"
        assert response.json()["scheme"] == "https"
    assert httpx.get(server.url("/scope"), verify=client).json()["http_version"] == "1.1"  # no ALPN h2
    # The server's SETTINGS frame carries Gunicorn's --http2-* values.
    client.set_alpn_protocols(["h2"])
    with (
        socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw,
        client.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        conn.initiate_connection()
        tls.sendall(conn.data_to_send())
        settings: dict[int, int] = {}
        while not settings:
            for event in conn.receive_data(tls.recv(65536)):
                if isinstance(event, h2.events.RemoteSettingsChanged):
                    settings = {code: change.new_value for code, change in event.changed_settings.items()}
    assert settings[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS] == 7
    assert settings[h2.settings.SettingCodes.INITIAL_WINDOW_SIZE] == 100000


def test_cleartext_http2_prior_knowledge(serve: ServerFactory) -> None:
    only = serve("--http-protocols", "h1,h2", "--http2-cleartext", "prior-knowledge", wait=False)
    both = serve("--http-protocols", "h1,h2", "--http2-cleartext", "both", wait=False)
    for server in (only, both):
        server.wait_for_output("(h2c: ")
        with httpx.Client(http1=False, http2=True) as h2c:
            response = h2c.get(server.url("/scope"))
            assert response.http_version == "HTTP/2"
            assert response.json()["http_version"] == "2"
    # A trusted peer speaking HTTP/1.1 to a prior-knowledge-only port gets HTTP/2's refusal of a bad preface
    # (RFC 9113 section 3.4: GOAWAY with PROTOCOL_ERROR); with "both" it is served.
    assert goaway_error(raw_exchange(only.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")) == 0x1
    assert httpx.get(both.url("/")).text == "ok"
    # On the port serving both, a connection that starts HTTP/2's preface but breaks it is HTTP/2's to refuse
    # too (h2spec 3.5/2), not answered as HTTP/1.1.
    assert goaway_error(raw_exchange(both.port, b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n")) == 0x1


def goaway_error(data: bytes) -> int | None:
    """The error code of the first GOAWAY frame in `data` (raw HTTP/2 frames), or None without one."""
    while len(data) >= 9:
        length, kind = int.from_bytes(data[:3], "big"), data[3]
        if kind == 0x7:
            return int.from_bytes(data[9 + 4 : 9 + 8], "big")
        data = data[9 + length :]
    return None


def uwsgi_packet(variables: dict[bytes, bytes]) -> bytes:
    body = b"".join(struct.pack("<H", len(k)) + k + struct.pack("<H", len(v)) + v for k, v in variables.items())
    return struct.pack("<BHB", 0, len(body), 0) + body


UWSGI_REQUEST = uwsgi_packet(
    {
        b"REQUEST_METHOD": b"GET",
        b"REQUEST_URI": b"/scope?x=1",
        b"PATH_INFO": b"/scope",
        b"QUERY_STRING": b"x=1",
        b"SERVER_PROTOCOL": b"HTTP/1.1",
        b"REMOTE_ADDR": b"198.51.100.9",
        b"REMOTE_PORT": b"40000",
        b"SERVER_NAME": b"example.org",
        b"SERVER_PORT": b"443",
        b"HTTPS": b"on",
        b"HTTP_HOST": b"example.org",
    }
)


def test_uwsgi_protocol_and_its_allow_list(serve: ServerFactory) -> None:
    allowed = serve("--protocol", "uwsgi", wait=False)
    refused = serve("--protocol", "uwsgi", "--uwsgi-allow-from", "10.0.0.1", wait=False)
    for server in (allowed, refused):
        server.wait_for_output("serving uwsgi")
    until(lambda: raw_exchange(allowed.port, UWSGI_REQUEST) != b"", 10, "no uWSGI answer")
    head, _, body = raw_exchange(allowed.port, UWSGI_REQUEST).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    info = json.loads(body)
    assert info["client"] == ["198.51.100.9", 40000]  # what nginx says, from a peer in --uwsgi-allow-from
    assert info["scheme"] == "https"
    assert raw_exchange(refused.port, UWSGI_REQUEST) == b""  # 127.0.0.1 is not in --uwsgi-allow-from


@pytest.mark.parametrize("mode", ["upgrade", "off"])
def test_cleartext_http2_by_upgrade(serve: ServerFactory, mode: str) -> None:
    """`--http2-cleartext upgrade`: an HTTP/1.1 request with `Upgrade: h2c` is answered 101 and then on stream 1
    over HTTP/2; with h2c off the same request is simply answered over HTTP/1.1."""
    server = serve("--http-protocols", "h1,h2", "--http2-cleartext", mode)
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    settings = client.initiate_upgrade_connection()
    assert settings is not None  # the client side always has a settings header to offer
    request = (
        b"GET /scope HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade, HTTP2-Settings\r\n"
        b"Upgrade: h2c\r\nHTTP2-Settings: " + settings + b"\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(request)
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = sock.recv(65536)
            assert chunk, f"closed before a response head: {received!r}"
            received += chunk
        head, _, rest = received.partition(b"\r\n\r\n")
        if mode == "off":
            assert head.startswith(b"HTTP/1.1 200")
            return
        assert head.startswith(b"HTTP/1.1 101")
        sock.sendall(client.data_to_send())  # our preface and SETTINGS, after the 101
        body = b""
        ended = False
        events = client.receive_data(rest)
        while not ended:
            for event in events:
                if isinstance(event, h2.events.DataReceived):
                    body += event.data or b""
                    client.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                ended = ended or (isinstance(event, h2.events.StreamEnded) and event.stream_id == 1)
            sock.sendall(client.data_to_send())
            if not ended:
                chunk = sock.recv(65536)
                assert chunk, "closed before stream 1 ended"
                events = client.receive_data(chunk)
    assert json.loads(body)["http_version"] == "2"
