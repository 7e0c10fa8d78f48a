"""HTTP/3 through asgi-core's Server: the h3 plugin found by entry point, a UDP endpoint on the TLS port, and
aioquic's client over a real loopback socket; Alt-Svc on the same server's HTTP/1.1 and HTTP/2 responses."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from asgi_core import Config, ConfigError, Receive, Scope, Send, Server, listen
from asgi_h3 import H3Server, attach_certificate

from tests.h3_client import connect

H3_NO_ERROR = 0x100


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if scope["path"] == "/slow":
        await asyncio.sleep(0.5)
    answer = f"{scope['http_version']} {scope['method']} {scope['path']} {len(body)}".encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": answer})


@pytest.fixture(name="ca", scope="module")
def ca_fixture() -> trustme.CA:
    return trustme.CA()


def server_tls(ca: trustme.CA, tmp_path: Path, *, attach: bool = True) -> ssl.SSLContext:
    cert = ca.issue_cert("localhost", "127.0.0.1")
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(certfile)
    cert.private_key_pem.write_to_path(keyfile)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certfile, keyfile)
    if attach:
        attach_certificate(context, certfile, keyfile)
    return context


@contextlib.asynccontextmanager
async def running(tls: ssl.SSLContext, **settings: Any) -> AsyncIterator[Server]:
    server = Server(app, Config(http_protocols=("h3", "h2", "h1"), **settings), ssl_context=tls)
    sock = listen("127.0.0.1", 0)
    await server.start([sock])
    try:
        yield server
    finally:
        await server.shutdown(2.0)
        sock.close()


def test_get_and_post_over_http3_and_alt_svc_on_http1_and_http2(ca: trustme.CA, tmp_path: Path) -> None:
    async def main() -> None:
        async with running(server_tls(ca, tmp_path)) as server:
            port = server.sockets[0].getsockname()[1]
            assert "h3" in server.describe()
            async with connect(port, ca.cert_pem.bytes()) as client:
                get = await client.request(b"/hello")
                post = await client.request(b"/upload", method=b"POST", body=b"x" * 300_000)
                assert get.status == 200
                assert bytes(get.body) == b"3 GET /hello 0"
                assert bytes(post.body) == b"3 POST /upload 300000"
            verify = ssl.create_default_context()
            ca.configure_trust(verify)
            async with httpx.AsyncClient(verify=verify) as h1:
                response = await h1.get(f"https://localhost:{port}/")
                assert response.http_version == "HTTP/1.1"
                assert response.headers["alt-svc"] == f'h3=":{port}"; ma=86400'
            async with httpx.AsyncClient(verify=verify, http2=True, http1=False) as h2:
                response = await h2.get(f"https://localhost:{port}/")
                assert response.http_version == "HTTP/2"
                assert response.headers["alt-svc"] == f'h3=":{port}"; ma=86400'

    asyncio.run(main())


def test_many_concurrent_requests_on_one_connection(ca: trustme.CA, tmp_path: Path) -> None:
    async def main() -> None:
        async with running(server_tls(ca, tmp_path)) as server:
            port = server.sockets[0].getsockname()[1]
            async with connect(port, ca.cert_pem.bytes()) as client:
                responses = [client.start(b"/%d" % i) for i in range(200)]
                await asyncio.wait_for(asyncio.gather(*(r.done.wait() for r in responses)), 20)
                assert [bytes(r.body) for r in responses] == [b"3 GET /%d 0" % i for i in range(200)]
            assert server.requests_served == 200

    asyncio.run(main())


def test_shutdown_with_a_request_in_flight_sends_goaway_and_finishes_it(ca: trustme.CA, tmp_path: Path) -> None:
    async def main() -> None:
        server = Server(app, Config(http_protocols=("h3", "h2", "h1")), ssl_context=server_tls(ca, tmp_path))
        sock = listen("127.0.0.1", 0)
        await server.start([sock])
        port = sock.getsockname()[1]
        try:
            async with connect(port, ca.cert_pem.bytes()) as client:
                slow = client.start(b"/slow")
                await asyncio.sleep(0.1)
                assert server.open_connections == 1  # the QUIC connection counts like a TCP one
                drained = asyncio.ensure_future(server.shutdown(5.0))
                await asyncio.wait_for(slow.done.wait(), 5)
                assert slow.status == 200
                assert bytes(slow.body) == b"3 GET /slow 0"
                assert client.goaway_ids() == [4]
                await asyncio.wait_for(drained, 5)
                await asyncio.wait_for(client.wait_closed(), 5)  # the server's CONNECTION_CLOSE
                assert client.terminated is not None
                assert client.terminated.error_code == H3_NO_ERROR
            assert server.open_connections == 0
        finally:
            sock.close()

    asyncio.run(main())


def test_h3_needs_the_certificate_files(ca: trustme.CA, tmp_path: Path) -> None:
    async def main() -> None:
        server = Server(
            app, Config(http_protocols=("h3", "h1")), ssl_context=server_tls(ca, tmp_path, attach=False)
        )
        sock = listen("127.0.0.1", 0)
        try:
            with pytest.raises(ConfigError, match="attach_certificate"):
                await server.start([sock])
        finally:
            await server.shutdown(0.1)
            sock.close()

    asyncio.run(main())


def test_h3_needs_tls() -> None:
    with pytest.raises(ConfigError, match="h3 only with TLS"):
        Server(app, Config(http_protocols=("h3", "h1")))


def test_closed_connections_leave_nothing_behind(ca: trustme.CA, tmp_path: Path) -> None:
    """hypercorn's HTTP/3 was reported to leak per connection (its issue 309): here every QUIC connection its
    client closed is gone from the endpoint's table and the server's connection count."""

    async def main() -> None:
        async with running(server_tls(ca, tmp_path)) as server:
            port = server.sockets[0].getsockname()[1]
            endpoint = server._datagram_transports[0].get_protocol()
            assert isinstance(endpoint, H3Server)
            for _ in range(20):
                async with connect(port, ca.cert_pem.bytes()) as client:
                    assert (await client.request(b"/")).status == 200
            for _ in range(500):
                if not endpoint._protocols and not server.context.connections:
                    break
                await asyncio.sleep(0.01)
            assert endpoint._protocols == {}
            assert len(server.context.connections) == 0
            assert server.requests_served == 20

    asyncio.run(main())


def test_new_connections_wait_at_the_connection_cap(ca: trustme.CA, tmp_path: Path) -> None:
    async def main() -> None:
        async with running(server_tls(ca, tmp_path), max_connections=1) as server:
            port = server.sockets[0].getsockname()[1]
            async with connect(port, ca.cert_pem.bytes()) as first:
                assert (await first.request(b"/")).status == 200
                with pytest.raises(asyncio.TimeoutError):
                    async with connect(port, ca.cert_pem.bytes(), timeout=0.5):
                        pass
                assert (await first.request(b"/again")).status == 200
            for _ in range(500):  # the first one's closing period ends
                if not server.context.connections:
                    break
                await asyncio.sleep(0.01)
            async with connect(port, ca.cert_pem.bytes()) as second:
                assert (await second.request(b"/")).status == 200

    asyncio.run(main())
