"""HTTP/2 end to end over real loopback sockets, with real clients: httpx[http2], curl, nghttp and h2load.

The server is `asgi_core.serve` with a small switch standing in for gunicorn-asgi's dispatcher: over TLS it
picks the protocol from the ALPN result (`h2`, else HTTP/1.1), in cleartext from the first bytes (the HTTP/2
preface, for trusted peers, else HTTP/1.1, which hands `Upgrade: h2c` over through the registry). Certificates
are made per session with trustme. Debian's curl and nghttp2-client are installed by the `h2_tools` fixture
when missing and running as root (CI is a fresh root Debian machine).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import h2.config
import h2.connection
import h2.events
import httpx
import pytest
import trustme
from asgi_core import Config, Receive, Scope, Send, serve
from h2.errors import ErrorCodes
from h2.settings import SettingCodes
from wsproto.connection import Connection, ConnectionType
from wsproto.events import CloseConnection, Message, TextMessage

SCENARIO_TIMEOUT = 60.0
CLIENT_TIMEOUT = 60.0
TOOLS = ("curl", "nghttp", "h2load")


# ---- tools and certificates ----------------------------------------------------------------------------


def _missing_tools() -> list[str]:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if "curl" not in missing:
        version = subprocess.run(["curl", "--version"], capture_output=True, text=True, check=False).stdout
        if "HTTP2" not in version:
            missing.append("curl with HTTP2")
    return missing


@pytest.fixture(scope="session")
def h2_tools() -> None:
    """curl (with HTTP/2), nghttp and h2load; installed with apt-get when missing and running as root."""
    missing = _missing_tools()
    if missing and hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=False, timeout=600, capture_output=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "curl", "nghttp2-client"],
            env=env,
            check=False,
            timeout=600,
            capture_output=True,
        )
        missing = _missing_tools()
        if missing:
            pytest.fail(f"could not install {missing} with apt-get")
    if missing:
        pytest.skip(f"needs {missing} (Debian: apt-get install curl nghttp2-client)")


class Certificates:
    def __init__(self, directory: Path) -> None:
        ca = trustme.CA()
        self._cert = ca.issue_cert("localhost", "127.0.0.1")
        self._ca = ca
        self.ca_file = directory / "ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_file))
        self.cert_file = directory / "cert.pem"
        self.key_file = directory / "key.pem"
        self._cert.cert_chain_pems[0].write_to_path(str(self.cert_file))
        self._cert.private_key_pem.write_to_path(str(self.key_file))

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._cert.configure_cert(context)
        context.set_alpn_protocols(["h2", "http/1.1"])
        return context

    def client_context(self, alpn: list[str]) -> ssl.SSLContext:
        context = ssl.create_default_context()
        self._ca.configure_trust(context)
        context.set_alpn_protocols(alpn)
        return context


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return Certificates(tmp_path_factory.mktemp("h2-tls"))


# ---- the app and the server ----------------------------------------------------------------------------

#: Set by a test that needs to know when a /slow request has reached the app.
SLOW_STARTED: dict[str, asyncio.Event] = {}


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    if scope["type"] == "websocket":
        await websocket_echo(receive, send)
        return
    path = scope["path"]
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if path == "/echo":
        reply = f"{len(body)} {hashlib.sha256(body).hexdigest()}".encode()
    elif path == "/big":
        size = int(scope["query_string"].split(b"=")[1])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        chunk = b"b" * 65536
        for offset in range(0, size, len(chunk)):
            await send({"type": "http.response.body", "body": chunk[: size - offset], "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    elif path == "/trailers":
        await send({"type": "http.response.start", "status": 200, "headers": [], "trailers": True})
        await send({"type": "http.response.body", "body": b"body with trailers"})
        await send({"type": "http.response.trailers", "headers": [(b"x-checksum", b"abc123")]})
        return
    elif path == "/slow":
        started = SLOW_STARTED.get("event")
        if started is not None:
            started.set()
        await asyncio.sleep(0.5)
        reply = b"slow done"
    elif path == "/version":
        reply = scope["http_version"].encode()
    elif path == "/client":
        host, port = scope["client"]
        reply = f"{host}:{port}".encode()
    else:
        reply = b"hello"
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": reply})


async def websocket_echo(receive: Receive, send: Send) -> None:
    message = await receive()
    assert message["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        await send({"type": "websocket.send", "text": "echo: " + message["text"]})


@asynccontextmanager
async def running(
    *, tls: ssl.SSLContext | None = None, config: Config | None = None, stop: asyncio.Event | None = None
) -> AsyncIterator[int]:
    """asgi-core's Server as `serve()` runs it: HTTP/1.1 and HTTP/2 chosen per connection (ALPN, the h2c
    preface), exactly as in the Gunicorn worker."""
    stop = stop or asyncio.Event()
    ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        serve(
            app,
            host="127.0.0.1",
            port=0,
            config=replace(config or Config(), http_protocols=("h2", "h1")),
            ssl_context=tls,
            stop=stop,
            ready=lambda server: ready.set_result(server.sockets[0].getsockname()[1]),
            graceful_timeout=5.0,
        )
    )
    try:
        yield await asyncio.wait_for(ready, 10)
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


def run(scenario: Callable[[], Any]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), SCENARIO_TIMEOUT))


async def command(*args: str) -> tuple[int, str, str]:
    """Run a client to completion (killed by its PID past the time limit)."""
    process = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), CLIENT_TIMEOUT)
    except asyncio.TimeoutError:  # not yet the builtin TimeoutError on Python 3.10
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, out.decode(errors="replace"), err.decode(errors="replace")


# ---- httpx -------------------------------------------------------------------------------------------


def test_httpx_over_tls_alpn_h2_and_http11_fallback(certs: Certificates) -> None:
    payload = os.urandom(1_000_000)

    async def scenario() -> None:
        async with running(tls=certs.server_context()) as port:
            url = f"https://localhost:{port}"
            async with httpx.AsyncClient(http2=True, verify=certs.client_context(["h2", "http/1.1"])) as client:
                first = await client.get(url + "/")
                assert (first.http_version, first.text) == ("HTTP/2", "hello")
                versions = await asyncio.gather(*(client.get(url + "/version") for _ in range(30)))
                assert {r.text for r in versions} == {"2"}
                echo = await client.post(url + "/echo", content=payload)
                assert echo.text == f"{len(payload)} {hashlib.sha256(payload).hexdigest()}"
                big = await client.get(url + "/big?n=3000000")
                assert len(big.content) == 3_000_000
            async with httpx.AsyncClient(http2=False, verify=certs.client_context(["http/1.1"])) as client:
                old = await client.get(url + "/version")
                assert (old.http_version, old.text) == ("HTTP/1.1", "1.1")

    run(scenario)


def test_rapid_reset_attacker_is_cut_off_while_others_are_served(certs: Certificates) -> None:
    async def attack(port: int) -> h2.events.ConnectionTerminated | None:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=certs.client_context(["h2"]), server_hostname="localhost"
        )
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        conn.initiate_connection()
        writer.write(conn.data_to_send())
        headers = [(":method", "GET"), (":path", "/slow"), (":scheme", "https"), (":authority", "localhost")]
        for _ in range(400):
            stream_id = conn.get_next_available_stream_id()
            conn.send_headers(stream_id, headers, end_stream=True)
            conn.reset_stream(stream_id)
        writer.write(conn.data_to_send())
        terminated = None
        while data := await reader.read(65536):
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.ConnectionTerminated):
                    terminated = event
        writer.close()
        return terminated

    async def scenario() -> None:
        async with running(tls=certs.server_context()) as port:
            url = f"https://localhost:{port}/"
            async with httpx.AsyncClient(http2=True, verify=certs.client_context(["h2"])) as client:
                assert (await client.get(url)).status_code == 200
                attacker = asyncio.create_task(attack(port))
                served = await asyncio.gather(*(client.get(url) for _ in range(20)))
                terminated = await attacker
                assert terminated is not None
                assert terminated.error_code == ErrorCodes.ENHANCE_YOUR_CALM
                assert all(response.status_code == 200 for response in served)
                assert (await client.get(url)).status_code == 200

    run(scenario)


# ---- curl ---------------------------------------------------------------------------------------------


def test_h2c_upgrade_keeps_the_proxy_protocol_client_for_every_stream() -> None:
    """Behind a load balancer speaking the PROXY protocol, a connection upgraded with `Upgrade: h2c` goes on
    announcing the client the header named: on the upgraded stream 1 and on every stream after it."""
    config = Config(
        http2_cleartext="upgrade", proxy_protocol="v1", proxy_allow_ips=("127.0.0.1",), forwarded_allow_ips=("*",)
    )
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    settings = client.initiate_upgrade_connection()
    assert settings is not None

    async def scenario() -> dict[int, str]:
        async with running(config=config) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                b"PROXY TCP4 192.0.2.9 192.0.2.1 40000 80\r\n"
                b"GET /client HTTP/1.1\r\nHost: example.org\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                b"Upgrade: h2c\r\nHTTP2-Settings: " + settings + b"\r\n\r\n" + client.data_to_send()
            )
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), CLIENT_TIMEOUT)
            assert head.startswith(b"HTTP/1.1 101 ")
            client.send_headers(
                3,
                [(":method", "GET"), (":path", "/client"), (":scheme", "http"), (":authority", "example.org")],
                end_stream=True,
            )
            writer.write(client.data_to_send())
            bodies: dict[int, str] = {}
            ended: set[int] = set()
            while ended != {1, 3}:
                data = await asyncio.wait_for(reader.read(65536), CLIENT_TIMEOUT)
                assert data, "the server closed the connection"
                for event in client.receive_data(data):
                    if isinstance(event, h2.events.DataReceived):
                        bodies[event.stream_id] = bodies.get(event.stream_id, "") + event.data.decode()
                        client.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                    elif isinstance(event, h2.events.StreamEnded):
                        ended.add(event.stream_id)
                writer.write(client.data_to_send())
            writer.close()
            return bodies

    assert asyncio.run(scenario()) == {1: "192.0.2.9:40000", 3: "192.0.2.9:40000"}


def test_curl_http2_over_tls_and_cleartext(h2_tools: None, certs: Certificates, tmp_path: Path) -> None:
    upload = tmp_path / "upload.bin"
    upload.write_bytes(os.urandom(300_000))
    expected = f"300000 {hashlib.sha256(upload.read_bytes()).hexdigest()}"
    curl = ("curl", "-sS", "--max-time", "30", "-w", " %{http_version}")

    async def scenario() -> None:
        async with running(tls=certs.server_context()) as port:
            base = f"https://localhost:{port}"
            status, out, err = await command(*curl, "--http2", "--cacert", str(certs.ca_file), base + "/version")
            assert (status, out) == (0, "2 2"), err
            status, out, err = await command(
                *curl, "--http2", "--cacert", str(certs.ca_file), "--data-binary", f"@{upload}", base + "/echo"
            )
            assert (status, out) == (0, f"{expected} 2"), err
        async with running(config=Config(http2_cleartext="both")) as port:
            base = f"http://127.0.0.1:{port}"
            status, out, err = await command(*curl, "--http2-prior-knowledge", base + "/version")
            assert (status, out) == (0, "2 2"), err
            status, out, err = await command(
                *curl, "--http2", base + "/version"
            )  # Upgrade: h2c, served on stream 1
            assert (status, out) == (0, "2 2"), err
        async with running() as port:  # h2c off (the default): the upgrade is ignored, HTTP/1.1 answers
            status, out, err = await command(*curl, "--http2", f"http://127.0.0.1:{port}/version")
            assert (status, out) == (0, "1.1 1.1"), err

    run(scenario)


def test_curl_sees_in_flight_request_finish_on_graceful_shutdown(h2_tools: None, certs: Certificates) -> None:
    async def scenario() -> None:
        stop = asyncio.Event()
        started = SLOW_STARTED["event"] = asyncio.Event()
        async with running(tls=certs.server_context(), stop=stop) as port:
            url = f"https://localhost:{port}/slow"
            client = asyncio.create_task(
                command("curl", "-sS", "--http2", "--cacert", str(certs.ca_file), "-w", " %{http_version}", url)
            )
            await asyncio.wait_for(started.wait(), 20)  # the request is in the app
            stop.set()  # SIGTERM's equivalent: GOAWAY, then the stream finishes
            status, out, err = await client
            assert (status, out) == (0, "slow done 2"), err

    try:
        run(scenario)
    finally:
        SLOW_STARTED.clear()


# ---- nghttp and h2load ---------------------------------------------------------------------------------


def test_nghttp_over_tls_and_h2c(h2_tools: None, certs: Certificates, tmp_path: Path) -> None:
    upload = tmp_path / "upload.bin"
    upload.write_bytes(b"u" * 100_000)

    async def scenario() -> None:
        async with running(tls=certs.server_context(), config=Config(http2_cleartext="both")) as port:
            base = f"https://127.0.0.1:{port}"
            status, out, err = await command("nghttp", "-nv", base + "/trailers")
            assert status == 0, err
            assert ":status: 200" in out
            assert re.search(r"x-checksum: abc123", out)  # the trailers HEADERS frame
            status, out, err = await command("nghttp", "-v", "-d", str(upload), base + "/echo")
            assert status == 0, err
            assert f"100000 {hashlib.sha256(upload.read_bytes()).hexdigest()}" in out
            status, out, err = await command("nghttp", "-ns", "-m", "20", base + "/version")
            assert status == 0, err
            assert out.count(" 200 ") == 20  # one stats line per response
            # Response headers carry no dynamic table; a client that shrinks its table size (twice here, 0 then
            # 512) wants a size update at the start of the next block, and nghttp2's decoder insists on it.
            status, out, err = await command("nghttp", "-nv", "-m", "3", "-c", "0", "-c", "512", base + "/version")
            assert status == 0, err
            assert out.count(":status: 200") == 3
            assert "HEADER_TABLE_SIZE(0x01):0" in out
        async with running(config=Config(http2_cleartext="both")) as port:
            base = f"http://127.0.0.1:{port}"
            for flags in ("-v", "-uv"):  # prior knowledge, then Upgrade: h2c
                status, out, err = await command("nghttp", flags, base + "/version")
                assert status == 0, err
                assert ":status: 200" in out
            assert "HTTP Upgrade response" in out

    run(scenario)


def test_h2load_many_concurrent_streams_without_failures(h2_tools: None, certs: Certificates) -> None:
    async def scenario() -> None:
        async with running(tls=certs.server_context()) as port:
            status, out, err = await command(
                "h2load", "-n", "2000", "-c", "4", "-m", "16", f"https://127.0.0.1:{port}/"
            )
            assert status == 0, err
            match = re.search(
                r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed", out
            )
            assert match is not None, out
            assert match.groups() == ("2000", "2000", "2000", "0"), out
            assert "2000 2xx" in out

    run(scenario)


# ---- WebSocket over HTTP/2 (RFC 8441) through asgi-wsproto ------------------------------------------------


def test_websocket_over_http2_through_asgi_wsproto(certs: Certificates) -> None:
    async def scenario() -> None:
        async with running(tls=certs.server_context()) as port:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, ssl=certs.client_context(["h2"]), server_hostname="localhost"
            )
            conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
            conn.initiate_connection()
            writer.write(conn.data_to_send())
            while conn.remote_settings.get(SettingCodes.ENABLE_CONNECT_PROTOCOL) != 1:
                conn.receive_data(await reader.read(65536))
            writer.write(conn.data_to_send())
            conn.send_headers(
                1,
                [
                    (b":method", b"CONNECT"),
                    (b":protocol", b"websocket"),
                    (b":scheme", b"https"),
                    (b":path", b"/ws"),
                    (b":authority", b"localhost"),
                    (b"sec-websocket-version", b"13"),
                ],
            )
            writer.write(conn.data_to_send())
            ws = Connection(ConnectionType.CLIENT)
            status = None
            texts: list[str] = []
            sent = False
            while not texts:
                for event in conn.receive_data(await reader.read(65536)):
                    if isinstance(event, h2.events.ResponseReceived):
                        status = dict(event.headers)[b":status"]
                    elif isinstance(event, h2.events.DataReceived):
                        conn.acknowledge_received_data(event.flow_controlled_length, 1)
                        ws.receive_data(event.data)
                        texts += [
                            e.data for e in ws.events() if isinstance(e, Message) and isinstance(e.data, str)
                        ]
                if status == b"200" and not sent:
                    conn.send_data(1, ws.send(TextMessage(data="over h2")))
                    sent = True
                writer.write(conn.data_to_send())
            assert texts == ["echo: over h2"]
            # The closing handshake: our close frame, the server's answer, then END_STREAM from each side.
            conn.send_data(1, ws.send(CloseConnection(code=1000)))
            writer.write(conn.data_to_send())
            closes: list[int] = []
            ended = False
            while not ended:
                data = await reader.read(65536)
                assert data, "the server closed the connection instead of ending the stream"
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.DataReceived):
                        conn.acknowledge_received_data(event.flow_controlled_length, 1)
                        ws.receive_data(event.data)
                        closes += [e.code for e in ws.events() if isinstance(e, CloseConnection)]
                    elif isinstance(event, h2.events.StreamEnded):
                        ended = True
                    elif isinstance(event, h2.events.StreamReset):
                        pytest.fail(f"stream reset: {event}")
                writer.write(conn.data_to_send())
            assert closes == [1000]
            conn.end_stream(1)
            writer.write(conn.data_to_send())
            writer.close()

    run(scenario)


# ---- the README's example, run as written --------------------------------------------------------------


def test_readme_tls_example_serves_http2(h2_tools: None, certs: Certificates, tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[1] / "packages" / "asgi-h2" / "README.md").read_text()
    example = re.search(r"```python\n(.*?)```", readme, re.DOTALL)
    assert example is not None
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code = (
        example.group(1)
        .replace('"cert.pem"', repr(str(certs.cert_file)))
        .replace('"key.pem"', repr(str(certs.key_file)))
        .replace("port=8443", f"port={port}")
    )
    script = tmp_path / "readme_example.py"
    script.write_text(code)

    async def scenario() -> None:
        server = await asyncio.create_subprocess_exec(sys.executable, str(script))
        try:
            deadline = asyncio.get_running_loop().time() + 20
            while True:
                status, out, err = await command(
                    "curl", "-sS", "--http2", "--cacert", str(certs.ca_file), f"https://localhost:{port}/"
                )
                if status == 0 or asyncio.get_running_loop().time() > deadline:
                    break
                await asyncio.sleep(0.2)
            assert (status, out) == (0, "hello over 2"), err
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(server.wait(), 10)
            except asyncio.TimeoutError:
                server.kill()
                await server.wait()
        assert server.returncode == 0

    run(scenario)
